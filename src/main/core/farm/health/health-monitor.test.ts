/**
 * The monitor with fake nodes (their commands and engines answer from memory, or never): states,
 * events, what it records, admin states from the history, quarantine, independence of nodes.
 * On the lab: test/integration/health.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CommandRunner } from '../../executor/command-runner'
import type { ConnectedNode, NodeSessions } from '../../executor/node-sessions'
import { NodeUnreachableError } from '../farm-errors'
import type { Farm, FarmNode } from '../farm-model'
import { HealthMonitor, type HealthRecorder, type NodeStateChanged } from './health-monitor'
import { recordJobOutcome } from '../node-admin'
import type { AdminState } from './node-state'
import { farmNode } from '../../../../../test/support/farm-node'

const node = (name: string): FarmNode => farmNode(name, { labels: [] })
const farm: Farm = {
  file: null,
  knownHosts: '/k',
  nodes: [node('n1'), node('n2'), node('n3')],
  platforms: {},
}

type Behaviour = 'ok' | 'hang' | 'refused' | 'engine-hang' | 'full-disk'
/** What each node does on the next probe; ours: running Yardmaster containers there. */
let behaviour: Record<string, Behaviour>
let ours: Record<string, number>

function answer(name: string): string {
  const disk = behaviour[name] === 'full-disk' ? 1000 : 90_000_000
  return `nowns ${BigInt(Date.now()) * 1_000_000n}\ncores 2\nload 0.5\ncpu cpu 10 0 10 80 0\nmem 1000 800\ndfroot /dev/x 1 1 ${disk} 1% /\n`
}

function fakeSessions(): NodeSessions {
  const open = (n: FarmNode): Promise<ConnectedNode> => {
    if (behaviour[n.name] === 'refused')
      return Promise.reject(new NodeUnreachableError(n, 'connection refused'))
    const commands: CommandRunner = {
      run: (_cmd, onOutput) => {
        if (behaviour[n.name] === 'hang') return new Promise(() => {})
        if (behaviour[n.name] === 'refused')
          return Promise.reject(new NodeUnreachableError(n, 'connection refused'))
        onOutput('stdout', Buffer.from(answer(n.name)))
        return Promise.resolve(0)
      },
    }
    const docker = {
      info: () => Promise.resolve({ DockerRootDir: '/var/lib/docker' }),
      ping: () => (behaviour[n.name] === 'engine-hang' ? new Promise(() => {}) : Promise.resolve('OK')),
      listContainers: () =>
        Promise.resolve(
          Array.from({ length: ours[n.name] ?? 0 }, () => ({ Labels: { 'io.yardmaster.managed': 'true' } })),
        ),
    }
    return Promise.resolve({
      node: n,
      ssh: null,
      docker,
      commands,
      executor: null,
      close: () => {},
    } as unknown as ConnectedNode)
  }
  return { open } as unknown as NodeSessions
}

/** Records what the monitor writes; admin states can be set as another process would. */
function fakeRecorder() {
  const r = {
    samples: [] as Array<[string, string]>,
    misses: [] as Array<[string, string]>,
    events: [] as Array<{ node: string; kind: string; from: string; to: string; reason: string | null }>,
    admin: new Map<string, AdminState>(),
    compactions: 0,
    addSample: (n: string, s: string) => void r.samples.push([n, s]),
    addMiss: (n: string, s: string) => void r.misses.push([n, s]),
    addEvent: (e: { node: string; kind: string; from: string; to: string; reason: string | null }) =>
      void r.events.push({ node: e.node, kind: e.kind, from: e.from, to: e.to, reason: e.reason }),
    adminStates: () => new Map(r.admin),
    setAdminState: (n: string, a: AdminState) =>
      void (a.kind === 'active' ? r.admin.delete(n) : r.admin.set(n, a)),
    compact: () => void r.compactions++,
    failures: new Map<string, number>(),
    infraFailures: () => new Map(r.failures),
    setInfraFailures: (n: string, count: number) =>
      void (count === 0 ? r.failures.delete(n) : r.failures.set(n, count)),
    atomically: <T>(fn: () => T): T => fn(),
  }
  return r satisfies HealthRecorder
}

function setup(opts: ConstructorParameters<typeof HealthMonitor>[2] = {}, of: Farm = farm) {
  behaviour = {}
  ours = {}
  const recorder = fakeRecorder()
  const monitor = new HealthMonitor(of, fakeSessions(), {
    probeTimeoutMs: 100,
    intervalMs: 0,
    recorder,
    ...opts,
  })
  const changes: NodeStateChanged[] = []
  monitor.subscribe((c) => changes.push(c))
  return { monitor, recorder, changes }
}

describe('HealthMonitor', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('brings answering nodes online, with an event and a sample each', async () => {
    const { monitor, recorder, changes } = setup()
    await monitor.round()
    expect([...monitor.states()].map(([n, s]) => [n, s.health.kind])).toEqual([
      ['n1', 'online'],
      ['n2', 'online'],
      ['n3', 'online'],
    ])
    expect(changes.map((c) => `${c.node}: ${c.from.health.kind} -> ${c.description}`)).toEqual([
      'n1: offline -> online',
      'n2: offline -> online',
      'n3: offline -> online',
    ])
    expect(recorder.samples).toEqual([
      ['n1', 'online'],
      ['n2', 'online'],
      ['n3', 'online'],
    ])
    expect(recorder.events[0]).toEqual({
      node: 'n1',
      kind: 'health',
      from: 'offline',
      to: 'online',
      reason: null,
    })
    expect(monitor.canTakeNewJobs('n1')).toBe(true)
    // Nothing changed: no more events.
    await monitor.round()
    expect(changes).toHaveLength(3)
  })

  it('a node that hangs is unreachable after the probe limit; the others are not held up', async () => {
    // Fake timers: the limit is reached when the test says so, not when a busy machine gets to it.
    vi.useFakeTimers()
    const { monitor, changes, recorder } = setup({ probeTimeoutMs: 300 })
    behaviour.n3 = 'hang'
    const t0 = Date.now()
    let done = false
    const round = monitor.round().then(() => (done = true))
    await vi.advanceTimersByTimeAsync(0)
    // n1 and n2 answered at once; n3 is still being waited for.
    expect(changes.map((c) => [c.node, c.at - t0, c.description])).toEqual([
      ['n1', 0, 'online'],
      ['n2', 0, 'online'],
    ])
    await vi.advanceTimersByTimeAsync(299)
    expect(done).toBe(false)
    expect(monitor.stateOf('n3')!.health.kind).toBe('offline')
    await vi.advanceTimersByTimeAsync(1)
    await round
    const n3 = changes.find((c) => c.node === 'n3')!
    expect(n3.at - t0).toBe(0) // dated from the start of its probe
    expect(n3.description).toBe('unreachable (no answer within 300 ms)')
    expect(monitor.stateOf('n3')!.health).toMatchObject({ kind: 'unreachable', cause: 'network' })
    expect(monitor.canTakeNewJobs('n3')).toBe(false)
    expect(recorder.misses).toEqual([['n3', 'unreachable']])
    expect(recorder.events.find((e) => e.node === 'n3')).toEqual({
      node: 'n3',
      kind: 'health',
      from: 'offline',
      to: 'unreachable',
      reason: 'network: no answer within 300 ms',
    })
    // Healed: online again.
    behaviour.n3 = 'ok'
    await monitor.round()
    expect(changes.at(-1)!.description).toBe('online')
  })

  it('says so when the connection is refused, when the engine hangs, and when a disk is low', async () => {
    const { monitor } = setup()
    behaviour = { n1: 'refused', n2: 'engine-hang', n3: 'full-disk' }
    await monitor.round()
    expect(monitor.stateOf('n1')!.health).toMatchObject({
      kind: 'unreachable',
      cause: 'network',
      reason: expect.stringContaining('connection refused'),
    })
    expect(monitor.stateOf('n2')!.health).toMatchObject({
      kind: 'unreachable',
      cause: 'engine',
      reason: 'SSH answers but the Docker engine does not: no answer within 100 ms',
    })
    expect(monitor.stateOf('n3')!.health).toEqual({
      kind: 'degraded',
      since: expect.any(Number),
      reasons: ['low disk on / (0.0 GiB free)'],
    })
    // Degraded nodes still take jobs.
    expect(monitor.canTakeNewJobs('n3')).toBe(true)
  })

  it("judges each node by its own health limits, over the farm's, over the monitor's", async () => {
    // Every node: load 0.5 on 2 cores, 20% of memory used; n3's disk has 1000 KiB free.
    const tuned: Farm = {
      ...farm,
      health: { loadPerCore: 0.1, memoryUsedPct: 50 },
      nodes: [
        node('n1'),
        { ...node('n2'), health: { loadPerCore: 1 } },
        { ...node('n3'), health: { loadPerCore: 1, diskFreeBytes: 512 * 1024 } },
      ],
    }
    const { monitor } = setup({ thresholds: { memoryUsedPct: 10 } }, tuned)
    behaviour.n3 = 'full-disk'
    await monitor.round()
    expect(monitor.stateOf('n1')!.health).toMatchObject({
      kind: 'degraded',
      reasons: ['high load (0.5 on 2 cores)'],
    })
    expect(monitor.stateOf('n2')!.health.kind).toBe('online')
    // The defaults would call 1000 KiB free low disk; n3 says 512 KiB is enough.
    expect(monitor.stateOf('n3')!.health.kind).toBe('online')
    expect(monitor.thresholds('n3')).toEqual({
      loadPerCore: 1,
      memoryUsedPct: 50,
      diskFreeBytes: 512 * 1024,
      engineSlowMs: 2000,
      clockSkewMs: 30_000,
    })
    expect(monitor.thresholds('nope')).toBeNull()

    // The farm file read again without limits: the monitor's own apply from the next probe.
    monitor.useFarm(farm)
    await monitor.round()
    for (const name of ['n1', 'n2'])
      expect(monitor.stateOf(name)!.health).toMatchObject({
        kind: 'degraded',
        reasons: ['low memory (20% used)'],
      })
    expect(monitor.stateOf('n3')!.health).toMatchObject({
      kind: 'degraded',
      reasons: ['low disk on / (0.0 GiB free)', 'low memory (20% used)'],
    })
  })

  it('goes offline after offlineAfterMs, then probes less often', async () => {
    let clock = 1_000_000
    const { monitor } = setup({ policy: { offlineAfterMs: 50 }, offlineIntervalMs: 60_000, now: () => clock })
    behaviour.n1 = 'refused'
    await monitor.round()
    expect(monitor.stateOf('n1')!.health.kind).toBe('unreachable')
    clock += 49
    await monitor.round()
    expect(monitor.stateOf('n1')!.health.kind).toBe('unreachable')
    clock += 1
    await monitor.round()
    expect(monitor.stateOf('n1')!.health.kind).toBe('offline')
    behaviour.n1 = 'ok'
    await monitor.round()
    // Not due yet: offline nodes are probed every offlineIntervalMs.
    expect(monitor.stateOf('n1')!.health.kind).toBe('offline')
  })

  it('takes admin states from the history (another process), and cordons a drained node', async () => {
    const { monitor, recorder, changes } = setup()
    recorder.admin.set('n1', { kind: 'draining', since: 1, reason: 'disk swap' })
    ours.n1 = 2
    await monitor.round()
    expect(monitor.stateOf('n1')!.admin).toEqual({ kind: 'draining', since: 1, reason: 'disk swap' })
    expect(monitor.canTakeNewJobs('n1')).toBe(false)
    expect(changes.filter((c) => c.kind === 'admin').map((c) => c.description)).toEqual([
      'offline (not probed yet), draining: disk swap',
    ])
    // Its jobs are done: drained, so cordoned, and that is written back.
    ours.n1 = 0
    await monitor.round()
    expect(monitor.stateOf('n1')!.admin).toMatchObject({ kind: 'cordoned', reason: 'drained: disk swap' })
    expect(recorder.admin.get('n1')).toMatchObject({ kind: 'cordoned' })
    expect(recorder.events.at(-1)).toMatchObject({
      node: 'n1',
      kind: 'admin',
      from: 'draining',
      to: 'cordoned',
    })
    // Resumed elsewhere: picked up.
    recorder.admin.delete('n1')
    await monitor.round()
    expect(monitor.stateOf('n1')!.admin.kind).toBe('active')
  })

  it('loads admin states at start, and takes up a quarantine recorded by runs', async () => {
    behaviour = {}
    ours = {}
    const recorder = fakeRecorder()
    recorder.admin.set('n2', { kind: 'cordoned', since: 1, reason: null })
    const monitor = new HealthMonitor(farm, fakeSessions(), { recorder, probeTimeoutMs: 100, intervalMs: 0 })
    expect(monitor.stateOf('n2')!.admin.kind).toBe('cordoned')
    await monitor.round()
    const changes: NodeStateChanged[] = []
    monitor.subscribe((c) => changes.push(c))
    // Runs (in this process or another) count failures in the history; the monitor reads them.
    for (let i = 0; i < 3; i++)
      recordJobOutcome(recorder, 'n1', { kind: 'infrastructure', at: i, reason: 'container create failed' })
    expect(monitor.stateOf('n1')!.admin.kind).toBe('active')
    await monitor.round()
    expect(monitor.stateOf('n1')).toMatchObject({ admin: { kind: 'quarantined' }, infraFailures: 3 })
    expect(changes).toEqual([
      expect.objectContaining({
        node: 'n1',
        kind: 'admin',
        description:
          'online, quarantined: 3 jobs in a row failed for infrastructure reasons (last: container create failed)',
      }),
    ])
    expect(recorder.admin.get('n1')).toMatchObject({
      kind: 'quarantined',
      reason: '3 jobs in a row failed for infrastructure reasons (last: container create failed)',
    })
    // The admin takes over: drained through the monitor, written to the history, announced at once.
    expect(monitor.apply('n1', { type: 'drain', at: 5, reason: null })).toEqual({ ok: true })
    expect(recorder.admin.get('n1')).toMatchObject({ kind: 'draining' })
    expect(changes.at(-1)).toMatchObject({ node: 'n1', description: 'online, draining' })
    expect(monitor.apply('n1', { type: 'drain', at: 6, reason: null })).toEqual({
      ok: false,
      error: 'the node is already draining',
    })
    expect(monitor.apply('n1', { type: 'resume', at: 7 })).toEqual({ ok: true })
    expect(monitor.stateOf('n1')).toMatchObject({ admin: { kind: 'active' }, infraFailures: 0 })
    expect(monitor.apply('nope', { type: 'resume', at: 5 })).toEqual({
      ok: false,
      error: 'no node "nope" in this farm',
    })
  })

  it('runs on its own once started, compacting the history, until stopped', async () => {
    vi.useFakeTimers()
    const { monitor, recorder } = setup({ intervalMs: 20, compactEveryMs: 0 })
    monitor.start()
    // A round at once, then one a tick (every 20 ms here): 3 nodes each time.
    await vi.advanceTimersByTimeAsync(0)
    expect(recorder.samples).toHaveLength(3)
    await vi.advanceTimersByTimeAsync(100)
    expect(recorder.samples).toHaveLength(18)
    expect(recorder.compactions).toBe(6)
    await monitor.stop()
    await vi.advanceTimersByTimeAsync(1000)
    expect(recorder.samples).toHaveLength(18)
  })
})
