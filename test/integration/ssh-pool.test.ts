/**
 * The connection pool on the lab: one host's traffic dropped (`fault.sh unreachable n3`) while
 * the others are used all along. The others must keep answering fast; n3's dropped connection
 * is noticed (keepalive), its breaker opens and its requests then fail at once; after `heal`
 * it reconnects on its own and the same session's engine answers again.
 *
 * Short timings so the test takes seconds: keepalive 1 s, handshake limit 2 s, breaker after
 * 3 failures, cool-down 3 s. The figures are printed for the record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSessions, type ConnectedNode } from '../../src/main/core/executor/node-sessions'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { Farm, FarmNode } from '../../src/main/core/farm/farm-model'
import type { LinkState } from '../../src/main/core/transport/link-breaker'
import { askEngine } from '../../src/main/core/farm/node-handle'
import { NodeUnavailableError, SshPool } from '../../src/main/core/transport/ssh-pool'
import { fault, lab } from '../support/lab'

let farm: Farm
let pool: SshPool
let sessions: NodeSessions
const node = (name: string): FarmNode => farm.nodes.find((n) => n.name === name)!

beforeAll(() => {
  farm = loadFarmFile(lab().farmFile)
  pool = new SshPool({
    keepaliveMs: 1000,
    timeoutMs: 2000,
    policy: { threshold: 3, baseDelayMs: 500, maxDelayMs: 4000, coolDownMs: 3000 },
  })
  sessions = new NodeSessions(farm, { pool, timeoutMs: 2000 })
})
afterAll(async () => {
  fault('heal', 'n3')
  await sessions.closeAll()
  pool.closeAll()
})

async function ping(s: ConnectedNode, ms = 2000): Promise<{ ok: boolean; ms: number; error?: string }> {
  const t = performance.now()
  try {
    await askEngine(s.docker!, 'ping', AbortSignal.timeout(ms))
    return { ok: true, ms: performance.now() - t }
  } catch (e) {
    return { ok: false, ms: performance.now() - t, error: (e as Error).message }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('connection pool on the lab', () => {
  it('an unreachable node fails fast once its breaker opens, costs the others nothing, and recovers after heal', async () => {
    const [n1, n2, n3] = await Promise.all(['n1', 'n2', 'n3'].map((n) => sessions.open(node(n))))
    const n3Target = sessions.target(node('n3'))
    const states: Array<{ at: number; to: LinkState['kind'] }> = []
    const unsubscribe = pool.subscribe((c) => {
      if (c.node.name === 'n3') states.push({ at: performance.now(), to: c.to.kind })
    })
    const others: number[] = []
    const figures: Record<string, number> = {}
    try {
      for (const s of [n1!, n2!, n3!]) expect((await ping(s)).ok).toBe(true)
      const t0 = performance.now()
      fault('unreachable', 'n3')

      // Use every node every 200 ms until n3's breaker is open.
      const deadline = t0 + 30_000
      while (pool.stateOf(n3Target).kind !== 'open' && performance.now() < deadline) {
        const [a, b] = await Promise.all([ping(n1!), ping(n2!), ping(n3!, 500)])
        expect(a.ok && b.ok).toBe(true)
        others.push(a.ms, b.ms)
        await sleep(200)
      }
      expect(pool.stateOf(n3Target).kind).toBe('open')
      const lost = states.find((s) => s.to === 'backoff')!
      figures.dropNoticedMs = Math.round(lost.at - t0)
      figures.breakerOpenMs = Math.round(states.find((s) => s.to === 'open')!.at - t0)
      // Keepalive 1 s × 3 misses: the drop is noticed within a few seconds, not never.
      expect(figures.dropNoticedMs).toBeLessThan(8000)

      // Open: every request for n3 fails at once with the reason, for any user of the pool:
      // without trying to connect (no state change), so not after a connect timeout. (How fast
      // is printed as a figure; `npm run bench -- ssh` measures the pool.)
      const other = new NodeSessions(farm, { pool, timeoutMs: 2000 })
      const seenBefore = states.length
      const t1 = performance.now()
      const err = await other.open(node('n3')).catch((e: Error) => e)
      figures.failFastMs = Math.round((performance.now() - t1) * 10) / 10
      expect(err).toBeInstanceOf(NodeUnavailableError)
      expect((err as Error).message).toMatch(/3 attempts in a row failed.*requests fail at once/)
      const r3 = await ping(n3!)
      expect(r3.ok).toBe(false)
      expect(r3.error).not.toMatch(/timed? ?out|aborted/i)
      expect(states.slice(seenBefore)).toEqual([])
      expect(pool.stateOf(n3Target).kind).toBe('open')
      await other.closeAll()

      // n1 and n2 answered all along (every ping above succeeded within its limit).
      others.sort((x, y) => x - y)
      figures.othersMedianMs = Math.round(others[Math.floor(others.length / 2)]! * 10) / 10
      figures.othersMaxMs = Math.round(others[others.length - 1]! * 10) / 10

      // Healed: the pool's own trial after the cool-down reconnects; the same session works again.
      const t2 = performance.now()
      fault('heal', 'n3')
      while (pool.stateOf(n3Target).kind !== 'connected' && performance.now() < t2 + 20_000) await sleep(100)
      expect(pool.stateOf(n3Target).kind).toBe('connected')
      figures.recoveredAfterHealMs = Math.round(performance.now() - t2)
      expect((await ping(n3!)).ok).toBe(true)
      console.log(`ssh pool figures: ${JSON.stringify(figures)}`)
    } finally {
      unsubscribe()
      fault('heal', 'n3')
    }
  })
})
