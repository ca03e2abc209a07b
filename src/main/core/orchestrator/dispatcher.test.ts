import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { farmNode } from '../../../../test/support/farm-node'
import { requirementsOf } from '../scheduler/capability-match'
import type { Priority } from '../scheduler/priority'
import { openDatabase, type Db } from '../store/database'
import { ClaimStore } from '../store/claim-store'
import { RunStore } from '../store/run-store'
import { Dispatcher, type SlotRequest } from './dispatcher'
import { SlotClaims } from './slot-claims'

let dir: string
const dbs: Db[] = []
const claimsOf = () => {
  const db = openDatabase(dir)
  dbs.push(db)
  return new SlotClaims(new ClaimStore(db), { alive: () => true }).start()
}
let jobIds: number[] = []
let runId = 0
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-dispatch-'))
  // Claims name real jobs of the history.
  const db = openDatabase(dir)
  dbs.push(db)
  const keys = Array.from({ length: 10 }, (_, i) => `j${i}`)
  const run = new RunStore(db).createRun({
    workflowName: 'w',
    workflowFile: '/w.yml',
    farmFile: null,
    jobs: keys.map((key) => ({ key, name: key, needs: [], runsOn: [], steps: [] })),
  })
  runId = run.runId
  new RunStore(db).setRunState(runId, 'running')
  jobIds = keys.map((k) => run.jobIds.get(k)!)
  job = 0
  keyOf.clear()
})

/** What waits, as the dispatcher recorded it in the history (what the queue view reads). */
const keyOf = new Map<number, string>()
const waits = () => new RunStore(dbs[0]!).waitingJobs().map((w) => ({ ...w, key: keyOf.get(w.jobId)! }))
/** Lets a deferred pass run (passes are coalesced on the next turn). */
const turn = () => new Promise((r) => setImmediate(r))
afterEach(() => {
  dbs.splice(0).forEach((d) => d.close())
  rmSync(dir, { recursive: true, force: true })
})

const n1 = farmNode('n1', { labels: ['self-hosted', 'linux'], slots: 1 })
const gpu = farmNode('gpu', { labels: ['self-hosted', 'linux', 'gpu'], slots: 1 })
let job = 0
const req = (key: string, priority: Priority = 'normal', extra: Partial<SlotRequest> = {}): SlotRequest => {
  const jobId = jobIds[job++]!
  keyOf.set(jobId, key)
  return {
    runId,
    jobId,
    key,
    pipeline: `/w/${key}.yml`,
    priority,
    requirements: requirementsOf(['linux'], {}),
    nodes: [n1],
    ...extra,
  }
}

describe('Dispatcher', () => {
  it('grants a free slot at once, and the next one to a hotfix before older normal work', async () => {
    const d = new Dispatcher(claimsOf(), { pollMs: 10_000 })
    const first = await d.request(req('first')).granted
    expect(first?.node.name).toBe('n1')
    const normal = d.request(req('normal'))
    const hotfix = d.request(req('fix', 'hotfix'))
    expect(normal.reason()).toBe('1 node fits; it is busy')
    expect(hotfix.reason()).toBe('1 node fits; it is busy')
    expect(waits().map((w) => [w.key, w.position, w.counts])).toEqual([
      ['fix', 1, { busy: 1 }],
      ['normal', 2, { busy: 1 }],
    ])
    // With no forecasts, a job counts a minute: the hotfix is next, the normal job a minute later.
    const [fixAt, normalAt] = waits().map((w) => w.expectedStart!)
    expect(normalAt! - fixAt!).toBe(60_000)
    d.release(first!.claimId)
    expect((await hotfix.granted)?.node.name).toBe('n1')
    expect(normal.reason()).toBe('1 node fits; it is busy')
    d.stop()
  })

  it('keeps a generic job off the specialised node while the generic one is free', async () => {
    const d = new Dispatcher(claimsOf())
    const g = await d.request(req('generic', 'normal', { nodes: [gpu, n1] })).granted
    expect(g?.node.name).toBe('n1')
    d.stop()
  })

  it("counts another process's claims, and grants when it frees its slot", async () => {
    const other = claimsOf()
    const held = other.claim([n1], { runId: null, jobId: null })!
    const d = new Dispatcher(claimsOf(), { pollMs: 20 })
    const t = d.request(req('waits'))
    expect(t.reason()).toBe('1 node fits; it is busy')
    other.release(held.claimId)
    // The poll notices without being told.
    expect((await t.granted)?.node.name).toBe('n1')
    d.stop()
  })

  it('gives a node under pressure fewer slots, says so, and gives them back once it is calm', async () => {
    const wide = farmNode('n2', { labels: ['self-hosted', 'linux'], slots: 2 })
    let load = 7.9
    const d = new Dispatcher(claimsOf(), {
      pollMs: 10_000,
      health: () => ({
        sample: { load1: load, cpus: 2, memUsedPct: 40 },
        limits: { loadPerCore: 2, memoryUsedPct: 95 },
      }),
    })
    const one = await d.request(req('one', 'normal', { nodes: [wide] })).granted
    const two = d.request(req('two', 'normal', { nodes: [wide] }))
    expect(two.reason()).toBe('1 node fits; it is busy (n2: 1 of 2 slots while load is 7.9 on 2 cores)')
    load = 0.5
    d.pass()
    expect((await two.granted)?.node.name).toBe('n2')
    expect(one?.node.name).toBe('n2')
    d.stop()
  })

  it('gives a wait up when its signal aborts, and lets the next job have the slot', async () => {
    const d = new Dispatcher(claimsOf(), { pollMs: 10_000 })
    const first = (await d.request(req('first')).granted)!
    const abort = new AbortController()
    const gone = d.request(req('gone'), abort.signal)
    const next = d.request(req('next'))
    abort.abort()
    expect(await gone.granted).toBeNull()
    await turn()
    expect(waits().map((w) => w.key)).toEqual(['next'])
    d.release(first.claimId)
    expect((await next.granted)?.node.name).toBe('n1')
    expect(await d.request(req('late'), AbortSignal.abort()).granted).toBeNull()
    d.stop()
  })
})
