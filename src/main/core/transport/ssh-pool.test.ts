/**
 * The pool with fake connections and fake timers: sharing, reconnection with backoff, the
 * breaker failing requests fast, idle close, jump links. Real SSH: test/integration/ssh-pool.test.ts.
 */
import { EventEmitter } from 'node:events'
import { PassThrough } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AuthenticationError, NodeUnreachableError } from '../farm/farm-errors'
import type { FarmNode } from '../farm/farm-model'
import type { HostKeyChecker } from './known-hosts'
import type { LinkState } from './link-breaker'
import {
  linkKey,
  MAX_EXTRA_CONNECTIONS,
  NodeUnavailableError,
  SshPool,
  type LinkTarget,
  type SshPoolOptions,
} from './ssh-pool'

const hostKeys: HostKeyChecker = { id: 'kh', keysFor: () => [], check: () => null }
const node = (name: string, host = `${name}.lab`): FarmNode => ({
  name,
  host,
  port: 22,
  user: 'ci',
  identityFile: '/k',
  executor: 'shell',
  labels: ['self-hosted'],
  slots: 1,
  defaultImage: null,
  source: null,
})
const target = (name: string, via: LinkTarget | null = null): LinkTarget => ({
  node: node(name),
  via,
  hostKeys,
})

type FakeClient = EventEmitter & {
  end: () => void
  exec: (cmd: string, opts: unknown, cb: (e: Error | undefined, ch: unknown) => void) => void
  host: string
  ended: boolean
}
/** Connections as the pool sees them; `drop` closes one as a network failure would. */
function fakeClient(host: string): FakeClient {
  const c = Object.assign(new EventEmitter(), {
    host,
    ended: false,
    // Channels are streams: the pool counts a session until its channel ends.
    exec: (cmd: string, _opts: unknown, cb: (e: Error | undefined, ch: unknown) => void) =>
      cb(undefined, Object.assign(new PassThrough(), { cmd, host })),
    end: () => {
      c.ended = true
      setImmediate(() => c.emit('close'))
    },
  })
  return c
}
const drop = (c: FakeClient, why = 'Keepalive timeout') => {
  c.emit('error', new Error(why))
  c.emit('close')
}

/** What each host does when connected to: answer, refuse, or hang until the timeout. */
let behaviour: Record<string, 'ok' | 'down' | 'auth' | 'hang'>
let clients: FakeClient[]
let connect: ReturnType<typeof vi.fn>
let forward: ReturnType<typeof vi.fn>
let changes: Array<[string, LinkState['kind'], LinkState['kind']]>

function pool(opts: SshPoolOptions = {}): SshPool {
  const p = new SshPool({
    policy: { threshold: 3, baseDelayMs: 1000, maxDelayMs: 8000, coolDownMs: 5000 },
    random: () => 0.5,
    connect: connect as unknown as SshPoolOptions['connect'],
    forward: forward as unknown as SshPoolOptions['forward'],
    ...opts,
  })
  p.subscribe((c) => changes.push([c.node.name, c.from.kind, c.to.kind]))
  return p
}

beforeEach(() => {
  vi.useFakeTimers()
  behaviour = {}
  clients = []
  changes = []
  connect = vi.fn((n: FarmNode, _kh: unknown, opts: { timeoutMs: number }) => {
    const b = behaviour[n.host] ?? 'ok'
    if (b === 'down') return Promise.reject(new NodeUnreachableError(n, 'connection refused'))
    if (b === 'auth') return Promise.reject(new AuthenticationError(n, 'the server refused the key'))
    if (b === 'hang')
      return new Promise((_, reject) =>
        setTimeout(
          () => reject(new NodeUnreachableError(n, 'no SSH handshake within the time limit')),
          opts.timeoutMs,
        ),
      )
    const c = fakeClient(n.host)
    clients.push(c)
    return Promise.resolve(c)
  })
  forward = vi.fn((jump: FakeClient, _name: string, n: FarmNode) =>
    Promise.resolve({ through: jump.host, to: n.host }),
  )
})
afterEach(() => {
  vi.useRealTimers()
})

describe('SshPool', () => {
  it('opens one connection per node, shared by every lease, whatever farm the node came from', async () => {
    const p = pool()
    const a = p.lease(target('n1'))
    const b = p.lease({ ...target('n1'), node: { ...node('n1'), name: 'other-name', labels: [] } })
    const [ca, cb] = await Promise.all([a.acquire(), b.acquire()])
    expect(ca).toBe(cb)
    expect(connect).toHaveBeenCalledTimes(1)
    expect(a.key).toBe('ci@n1.lab:22 key=/k hostkeys=kh')
    // A different key file or other host key checks are another connection.
    expect(linkKey({ ...target('n1'), node: { ...node('n1'), identityFile: null } })).not.toBe(a.key)
    expect(linkKey({ ...target('n1'), hostKeys: { keysFor: () => [], check: () => null } })).toMatch(
      /hostkeys=#\d+$/,
    )
    a.release()
    expect((ca as unknown as FakeClient).ended).toBe(false)
    b.release()
    // The last user gone, the connection closes (idleMs 0).
    expect((ca as unknown as FakeClient).ended).toBe(true)
    await vi.advanceTimersByTimeAsync(0)
    expect(changes.map((c) => c.slice(1).join('>'))).toEqual([
      'idle>connecting',
      'connecting>connected',
      'connected>idle',
    ])
  })

  it('keeps an unused connection for idleMs, and hands it to a new user meanwhile', async () => {
    const p = pool({ idleMs: 30_000 })
    const a = p.lease(target('n1'))
    const c = await a.acquire()
    a.release()
    await vi.advanceTimersByTimeAsync(29_000)
    const b = p.lease(target('n1'))
    expect(await b.acquire()).toBe(c)
    b.release()
    await vi.advanceTimersByTimeAsync(29_999)
    expect((c as unknown as FakeClient).ended).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect((c as unknown as FakeClient).ended).toBe(true)
  })

  it('reconnects a dropped connection on its own, soon and with jitter, while it has users', async () => {
    const p = pool()
    const lease = p.lease(target('n1'))
    const first = await lease.acquire()
    drop(first as unknown as FakeClient)
    expect(p.stateOf(target('n1'))).toMatchObject({
      kind: 'backoff',
      failures: 0,
      lastError: expect.stringContaining('dropped: Keepalive timeout'),
    })
    expect(lease.client).toBeNull()
    // random 0.5: retry after 0.5 × base / 2 = 250 ms, without anyone asking.
    await vi.advanceTimersByTimeAsync(249)
    expect(connect).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(connect).toHaveBeenCalledTimes(2)
    expect(lease.client).not.toBe(first)
    expect(lease.client).not.toBeNull()
    // Commands follow the new connection.
    const ran = await new Promise((resolve) =>
      (lease.exec.exec as (c: string, cb: (e: unknown, ch: unknown) => void) => void)('true', (_e, ch) =>
        resolve(ch),
      ),
    )
    expect(ran).toMatchObject({ cmd: 'true', host: 'n1.lab' })
    lease.release()
  })

  describe("sessions past one connection's MaxSessions", () => {
    type Exec = (c: string, cb: (e: Error | undefined, ch: PassThrough & { host: string }) => void) => void
    const opener = (lease: { exec: unknown }) => {
      const exec = (lease.exec as { exec: Exec }).exec
      return (cmd: string) =>
        new Promise<PassThrough & { host: string; cmd: string }>((resolve, reject) =>
          exec(cmd, (e, ch) => (e ? reject(e) : resolve(ch as PassThrough & { host: string; cmd: string }))),
        )
    }
    const end = (ch: PassThrough) => {
      ch.resume()
      ch.end()
    }

    it('never opens more than MaxSessions on one connection: the 11th session opens a second connection to the node', async () => {
      const p = pool()
      const lease = p.lease(target('n1'))
      const open = opener(lease)
      const first = await Promise.all(Array.from({ length: 10 }, (_, i) => open(`job ${i}`)))
      expect(connect).toHaveBeenCalledTimes(1)
      const eleventh = await open('job 10')
      expect(connect).toHaveBeenCalledTimes(2)
      expect(clients).toHaveLength(2)
      // Same node, its own connection; the link's own is still the one leases see.
      expect(eleventh.host).toBe('n1.lab')
      expect(lease.client).toBe(clients[0])
      for (const ch of [...first, eleventh]) end(ch)
      lease.release()
    })

    it('opens at most 3 extra connections; past 40 sessions the next waits for one to end', async () => {
      const p = pool()
      const lease = p.lease(target('n1'))
      const open = opener(lease)
      const held: PassThrough[] = []
      for (let i = 0; i < 40; i++) held.push(await open(`job ${i}`))
      expect(connect).toHaveBeenCalledTimes(1 + MAX_EXTRA_CONNECTIONS)
      let late: PassThrough | null = null
      let later: PassThrough | null = null
      void open('late').then((ch) => (late = ch))
      void open('later').then((ch) => (later = ch))
      await vi.advanceTimersByTimeAsync(10)
      expect([late, later]).toEqual([null, null])
      expect(connect).toHaveBeenCalledTimes(4)
      // A session ends on any of the connections: the first to wait goes, the next still waits.
      end(held[25]!)
      await vi.advanceTimersByTimeAsync(10)
      expect(late).toMatchObject({ cmd: 'late' })
      expect(later).toBeNull()
      end(held[3]!)
      await vi.advanceTimersByTimeAsync(10)
      expect(later).toMatchObject({ cmd: 'later' })
      lease.release()
    })

    it('closes an extra connection 30 s after its last session ended, and all of them with the link', async () => {
      const p = pool()
      const lease = p.lease(target('n1'))
      const open = opener(lease)
      const held = await Promise.all(Array.from({ length: 12 }, (_, i) => open(`job ${i}`)))
      expect(clients).toHaveLength(2)
      const extra = held.filter((ch) => ch === held[10] || ch === held[11])
      for (const ch of extra) end(ch)
      await vi.advanceTimersByTimeAsync(29_000)
      expect(clients[1]!.ended).toBe(false)
      await vi.advanceTimersByTimeAsync(1_000)
      expect(clients[1]!.ended).toBe(true)
      expect(clients[0]!.ended).toBe(false)
      // Busy again: a new extra; the link's own connection drops, and the extra goes with it.
      await open('job 12')
      expect(clients).toHaveLength(3)
      drop(clients[0]!)
      expect(clients[2]!.ended).toBe(true)
      lease.release()
    })

    it('behind a jump host, and after an extra connection failed, waits for a session instead', async () => {
      const p = pool()
      const jumped = p.lease(target('n2', target('n1')))
      const viaJump = opener(jumped)
      const held = await Promise.all(Array.from({ length: 10 }, (_, i) => viaJump(`job ${i}`)))
      const calls = connect.mock.calls.length
      let waiting: PassThrough | null = null
      void viaJump('waits').then((ch) => (waiting = ch))
      await vi.advanceTimersByTimeAsync(10)
      expect(waiting).toBeNull()
      expect(connect.mock.calls.length).toBe(calls)
      end(held[0]!)
      await vi.advanceTimersByTimeAsync(10)
      expect(waiting).toMatchObject({ cmd: 'waits' })
      jumped.release()

      const lease = p.lease(target('n3'))
      const open = opener(lease)
      const own = await Promise.all(Array.from({ length: 10 }, (_, i) => open(`job ${i}`)))
      behaviour['n3.lab'] = 'down'
      let queued: PassThrough | null = null
      void open('queued').then((ch) => (queued = ch))
      await vi.advanceTimersByTimeAsync(10)
      expect(queued).toBeNull()
      const tried = connect.mock.calls.length
      // Within 30 s of the failure no other extra is tried; the session waits for one of its own.
      const another = open('another').catch((e: Error) => e)
      await vi.advanceTimersByTimeAsync(10)
      expect(connect.mock.calls.length).toBe(tried)
      end(own[0]!)
      await vi.advanceTimersByTimeAsync(10)
      expect(queued).toMatchObject({ cmd: 'queued' })
      end(own[1]!)
      expect(await another).toMatchObject({ cmd: 'another' })
      lease.release()
    })
  })

  it('a command on a connection that closed meanwhile fails with the reason, and gives its session back', async () => {
    const p = pool()
    const lease = p.lease(target('n1'))
    const c = (await lease.acquire()) as unknown as FakeClient
    // ssh2 throws when the connection is gone by the time exec is called.
    let refusals = 12
    const works = c.exec
    c.exec = (cmd, opts, cb) => {
      if (refusals-- > 0) throw new Error('Not connected')
      works(cmd, opts, cb)
    }
    const exec = lease.exec.exec as unknown as (
      c: string,
      cb: (e: Error | undefined, ch: unknown) => void,
    ) => void
    const attempt = (cmd: string) =>
      new Promise<Error | PassThrough>((resolve) => exec(cmd, (e, ch) => resolve(e ?? (ch as PassThrough))))
    const failed = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt(`job ${i}`)))
    expect(failed.map((e) => (e as Error).message)).toEqual(Array(12).fill('Not connected'))
    // More than the 10 sessions failed: none was kept, so the next command gets one at once.
    expect(await attempt('true')).toMatchObject({ cmd: 'true' })
    lease.release()
  })

  it('a retry timer that fires before the breaker says (the clock was set back) waits again, then tries', async () => {
    let lag = 0
    const p = pool({ now: () => Date.now() - lag })
    behaviour['n3.lab'] = 'down'
    const lease = p.lease(target('n3'))
    await lease.acquire().catch(() => {})
    await vi.advanceTimersByTimeAsync(750 + 1500)
    expect(p.stateOf(target('n3'))).toMatchObject({ kind: 'open', failures: 3 })
    expect(connect).toHaveBeenCalledTimes(3)
    // The breaker's retry is 5 s away; the clock goes back 1 s meanwhile.
    lag = 1000
    await vi.advanceTimersByTimeAsync(5000)
    expect(connect).toHaveBeenCalledTimes(3)
    expect(p.stateOf(target('n3')).kind).toBe('open')
    behaviour['n3.lab'] = 'ok'
    await vi.advanceTimersByTimeAsync(999)
    expect(connect).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(1)
    expect(connect).toHaveBeenCalledTimes(4)
    expect(p.stateOf(target('n3')).kind).toBe('connected')
    lease.release()
  })

  it('backs off exponentially, opens the breaker after 3 failures, then fails requests at once', async () => {
    const p = pool()
    behaviour['n3.lab'] = 'down'
    const lease = p.lease(target('n3'))
    await expect(lease.acquire()).rejects.toBeInstanceOf(NodeUnreachableError)
    // Background retries: 1000·2^0 and 1000·2^1 with equal jitter at 0.5 → 750 ms, then 1500 ms.
    await vi.advanceTimersByTimeAsync(749)
    expect(connect).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(connect).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(1500)
    expect(connect).toHaveBeenCalledTimes(3)
    const state = p.stateOf(target('n3'))
    expect(state).toMatchObject({ kind: 'open', failures: 3 })
    // Open: a request fails at once, with the last reason, and no connection is tried.
    const t0 = Date.now()
    const err = await lease.acquire().catch((e: Error) => e)
    expect(Date.now() - t0).toBe(0)
    expect(err).toBeInstanceOf(NodeUnavailableError)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toBe(
      'cannot reach node n3 (ci@n3.lab:22): connection refused (3 attempts in a row failed, unreachable for 2 s; ' +
        'the next attempt is in 5 s, and until then requests fail at once). ' +
        'Check that the machine is up and sshd listens there (try: ssh -p 22 ci@n3.lab).',
    )
    expect(connect).toHaveBeenCalledTimes(3)
    // The node comes back: the trial after the cool-down closes the breaker.
    behaviour['n3.lab'] = 'ok'
    await vi.advanceTimersByTimeAsync(5000)
    expect(connect).toHaveBeenCalledTimes(4)
    expect(p.stateOf(target('n3')).kind).toBe('connected')
    await expect(lease.acquire()).resolves.toBe(lease.client)
    lease.release()
  })

  it('a node that hangs costs the others nothing', async () => {
    const p = pool({ timeoutMs: 10_000 })
    behaviour['n3.lab'] = 'hang'
    const slow = p.lease(target('n3'))
    const fast = p.lease(target('n1'))
    const pending = slow.acquire().catch((e: Error) => e)
    const t0 = Date.now()
    await fast.acquire()
    expect(Date.now() - t0).toBe(0)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(await pending).toBeInstanceOf(NodeUnreachableError)
    slow.release()
    fast.release()
  })

  it('during the one trial through an open breaker, other requests still fail fast', async () => {
    const p = pool({ timeoutMs: 3000 })
    behaviour['n3.lab'] = 'down'
    const lease = p.lease(target('n3'))
    for (let i = 0; i < 3; i++) await lease.acquire().catch(() => {})
    expect(p.stateOf(target('n3')).kind).toBe('open')
    lease.release() // no users: no background trial; the next request makes it
    behaviour['n3.lab'] = 'hang'
    await vi.advanceTimersByTimeAsync(5000)
    const again = p.lease(target('n3'))
    const trial = again.acquire().catch((e: Error) => e)
    expect(p.stateOf(target('n3'))).toMatchObject({ kind: 'connecting', trial: true })
    await expect(again.acquire()).rejects.toThrow(/a new attempt is under way/)
    await vi.advanceTimersByTimeAsync(3000)
    expect(await trial).toBeInstanceOf(NodeUnreachableError)
    // A failed trial opens it again, for longer: 1000·2^3 = 8000 capped at 8000, jitter 0.5 → 6000.
    expect(p.stateOf(target('n3'))).toMatchObject({ kind: 'open', failures: 4, retryAt: Date.now() + 6000 })
    again.release()
  })

  it('does not count a refused key or credential: no backoff, no breaker', async () => {
    const p = pool()
    behaviour['n1.lab'] = 'auth'
    const lease = p.lease(target('n1'))
    for (let i = 0; i < 5; i++) await expect(lease.acquire()).rejects.toBeInstanceOf(AuthenticationError)
    expect(p.stateOf(target('n1'))).toEqual({ kind: 'idle' })
    expect(p.lastErrorOf(target('n1'))).toBeInstanceOf(AuthenticationError)
    // Fixed: the next request connects, no waiting.
    behaviour['n1.lab'] = 'ok'
    await expect(lease.acquire()).resolves.toBeTruthy()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(connect).toHaveBeenCalledTimes(6)
    lease.release()
  })

  it('stops retrying when nobody uses the link any more', async () => {
    const p = pool()
    behaviour['n3.lab'] = 'down'
    const lease = p.lease(target('n3'))
    await lease.acquire().catch(() => {})
    lease.release()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(connect).toHaveBeenCalledTimes(1)
  })

  it('carries a node behind a jump host on the jump link, held while the inner one is up', async () => {
    const p = pool()
    const jump = target('bastion')
    const inner = p.lease(target('n2', jump))
    await inner.acquire()
    expect(connect.mock.calls.map((c) => (c[0] as FarmNode).name)).toEqual(['bastion', 'n2'])
    expect(forward).toHaveBeenCalledWith(clients[0], 'bastion', node('n2'), 10_000)
    expect(connect.mock.calls[1]![2]).toMatchObject({ sock: { through: 'bastion.lab', to: 'n2.lab' } })
    expect(inner.key).toBe('ci@n2.lab:22 key=/k hostkeys=kh via ci@bastion.lab:22 key=/k hostkeys=kh')
    inner.release()
    await vi.advanceTimersByTimeAsync(0)
    // The inner connection closed, then the jump link lost its last user and closed too.
    expect(clients.map((c) => c.ended)).toEqual([true, true])
  })

  it('a jump host that is down fails the inner node with the jump host named', async () => {
    const p = pool()
    behaviour['bastion.lab'] = 'down'
    const inner = p.lease(target('n2', target('bastion')))
    await expect(inner.acquire()).rejects.toThrow(
      /^cannot reach node n2 \(ci@n2\.lab:22\): its jump host bastion cannot be reached: cannot reach node bastion/,
    )
    inner.release()
  })

  it("uses the newest user's host key policy for the next attempt (same files, say now accepting new keys)", async () => {
    const p = pool()
    const strict = { ...hostKeys, check: () => null }
    const lenient = { ...hostKeys, check: () => null }
    const a = p.lease({ ...target('n1'), hostKeys: strict })
    a.release()
    const b = p.lease({ ...target('n1'), hostKeys: lenient })
    expect(b.key).toBe(a.key)
    await b.acquire()
    expect(connect.mock.calls[0]![1]).toBe(lenient)
    b.release()
  })

  it('one engine per link, for every lease', () => {
    const p = pool()
    const a = p.lease(target('n1'))
    const b = p.lease(target('n1'))
    expect(a.docker()).toBe(b.docker())
    a.release()
    b.release()
  })

  it('closeAll ends every connection', async () => {
    const p = pool()
    await p.lease(target('n1')).acquire()
    await p.lease(target('n2')).acquire()
    p.closeAll()
    expect(clients.map((c) => c.ended)).toEqual([true, true])
    await vi.advanceTimersByTimeAsync(60_000)
    expect(connect).toHaveBeenCalledTimes(2)
  })
})
