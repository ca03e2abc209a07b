/**
 * The farm service with fake nodes (commands and engines answering from memory) and a real
 * history (SQLite in a temp dir): views, coalesced node.changed events, admin commands routed
 * through the monitor, farm replacement, edits written to a real farm file. On the lab, through
 * the Backend: test/integration/node-api.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ApiEvents } from '../../../shared/api'
import type { NodeLiveView } from '../../../shared/model'
import type { CommandRunner } from '../executor/command-runner'
import type { ConnectedNode, NodeSessions } from '../executor/node-sessions'
import { openDatabase, type Db } from '../store/database'
import { NodeMetricsStore } from '../store/node-metrics-store'
import { loadFarmFile } from './farm-file'
import type { Farm, FarmNode } from './farm-model'
import {
  FarmService,
  findFarmNode,
  liveView,
  nodeAddress,
  sameConnections,
  UnknownNodeError,
  type FarmEventName,
} from './farm-service'
import type { HealthSample } from './health/health-probe'
import type { NodeState } from './health/node-state'
import { farmNode } from '../../../../test/support/farm-node'

const node = (name: string, over: Partial<FarmNode> = {}): FarmNode =>
  farmNode(name, {
    labels: ['self-hosted', 'linux'],
    slots: 2,
    source: { file: '/farm.yml', line: 3, col: 5 },
    ...over,
  })

const SAMPLE: HealthSample = {
  at: 1000,
  load1: 0.5,
  cpus: 2,
  cpuPct: 10,
  memUsedPct: 20,
  rootFreeBytes: 1e11,
  dataFreeBytes: 1e11,
  containersOurs: 0,
  containersOthers: 1,
  engineMs: 3,
  rttMs: 4,
  skewMs: 0,
}

describe('liveView', () => {
  const n = node('n1')
  it('online and active: no reasons, takes jobs, carries the sample and where it is declared', () => {
    const state: NodeState = {
      health: { kind: 'online', since: 5 },
      admin: { kind: 'active' },
      infraFailures: 1,
    }
    expect(liveView(n, state, SAMPLE)).toEqual({
      name: 'n1',
      host: 'n1.lab',
      executor: 'docker',
      labels: ['self-hosted', 'linux'],
      slots: 2,
      address: 'ci@n1.lab:22',
      health: 'online',
      healthSince: 5,
      healthReasons: [],
      unreachableCause: null,
      admin: 'active',
      adminSince: null,
      adminReason: null,
      description: 'online',
      canTakeNewJobs: true,
      defaultImage: null,
      infraFailures: 1,
      sample: SAMPLE,
      source: { file: '/farm.yml', line: 3 },
    } satisfies NodeLiveView)
  })

  it('unreachable and draining: why, and takes no jobs', () => {
    const state: NodeState = {
      health: { kind: 'unreachable', since: 7, cause: 'engine', reason: 'no answer within 4000 ms' },
      admin: { kind: 'draining', since: 9, reason: 'disk swap' },
      infraFailures: 0,
    }
    expect(liveView(n, state, null)).toMatchObject({
      health: 'unreachable',
      healthSince: 7,
      healthReasons: ['no answer within 4000 ms'],
      unreachableCause: 'engine',
      admin: 'draining',
      adminSince: 9,
      adminReason: 'disk swap',
      description: 'unreachable (no answer within 4000 ms), draining: disk swap',
      canTakeNewJobs: false,
      sample: null,
    })
  })

  it('degraded: every reason; quarantined: the rule says why', () => {
    const state: NodeState = {
      health: { kind: 'degraded', since: 1, reasons: ['high load', 'low disk on /'] },
      admin: { kind: 'quarantined', since: 2, reason: '3 jobs in a row failed' },
      infraFailures: 3,
    }
    expect(liveView(n, state, null)).toMatchObject({
      healthReasons: ['high load', 'low disk on /'],
      admin: 'quarantined',
      adminReason: '3 jobs in a row failed',
      canTakeNewJobs: false,
    })
  })

  it('addresses: through a jump host, and this machine', () => {
    expect(nodeAddress(node('n2', { jump: 'n1', port: 2222 }))).toBe('ci@n2.lab:2222 via n1')
    expect(nodeAddress(node('me', { host: 'local' }))).toBe('this machine')
  })
})

describe('findFarmNode and sameConnections', () => {
  const farm: Farm = { file: '/f/farm.yml', knownHosts: '/k', nodes: [node('n1'), node('n2')], platforms: {} }
  it('names the farm, suggests, and lists the nodes', () => {
    expect(findFarmNode(farm, 'n2').name).toBe('n2')
    expect(() => findFarmNode(farm, 'n3')).toThrow(new UnknownNodeError(farm, 'n3').message)
    expect(new UnknownNodeError(farm, 'n3').message).toBe(
      'there is no node "n3" in /f/farm.yml; did you mean "n1"? Nodes: n1, n2',
    )
    expect(new UnknownNodeError({ ...farm, file: null }, 'zzzzzz').message).toBe(
      'there is no node "zzzzzz" in the default farm (this machine). Nodes: n1, n2',
    )
  })

  it('labels, slots and images do not change connections; addresses, users, jump hosts do', () => {
    const relabel = {
      ...farm,
      nodes: [node('n1', { labels: ['gpu'], slots: 9, defaultImage: 'x' }), node('n2')],
    }
    expect(sameConnections(farm, relabel)).toBe(true)
    expect(sameConnections(farm, { ...farm, nodes: [node('n1', { port: 2222 }), node('n2')] })).toBe(false)
    expect(sameConnections(farm, { ...farm, nodes: [node('n1', { jump: 'n2' }), node('n2')] })).toBe(false)
    expect(sameConnections(farm, { ...farm, nodes: [node('n1')] })).toBe(false)
    expect(sameConnections(farm, { ...farm, knownHosts: '/other' })).toBe(false)
  })
})

describe('FarmService', () => {
  let dir: string
  let db: Db
  let metrics: NodeMetricsStore
  let service: FarmService | null
  /** Nodes that refuse connections. */
  let refused: Set<string>
  let opened: string[][]

  /** Sessions whose nodes answer the health probe from memory (or refuse). */
  function fakeSessions(): NodeSessions {
    const mine: string[] = []
    opened.push(mine)
    const open = (n: FarmNode): Promise<ConnectedNode> => {
      mine.push(n.name)
      if (refused.has(n.name)) return Promise.reject(new Error('connection refused'))
      const commands: CommandRunner = {
        run: (_cmd, onOutput) => {
          onOutput(
            'stdout',
            Buffer.from(
              `nowns ${BigInt(Date.now()) * 1_000_000n}\ncores 2\nload 0.5\ncpu cpu 10 0 10 80 0\nmem 1000 800\ndfroot /dev/x 1 1 90000000 1% /\n`,
            ),
          )
          return Promise.resolve(0)
        },
      }
      const docker = {
        info: () => Promise.resolve({ DockerRootDir: '/var/lib/docker' }),
        ping: () => Promise.resolve('OK'),
        listContainers: () => Promise.resolve([]),
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
    return {
      open,
      closeAll: () => Promise.resolve(),
      tunnel: () => Promise.resolve(undefined),
    } as unknown as NodeSessions
  }

  function start(farm: Farm) {
    const s = new FarmService(farm, {
      dataDir: dir,
      metrics,
      openSessions: fakeSessions,
      monitor: { intervalMs: 50, probeTimeoutMs: 200 },
    })
    service = s
    const events: Array<{ event: FarmEventName; payload: ApiEvents[FarmEventName] }> = []
    s.subscribe((event, payload) => events.push({ event, payload }))
    s.start()
    return { s, events }
  }

  const changedOf = (events: Array<{ event: FarmEventName; payload: unknown }>, name: string) =>
    events.filter((e) => e.event === 'node.changed' && (e.payload as NodeLiveView).name === name)

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ym-farm-service-'))
    db = openDatabase(dir)
    metrics = new NodeMetricsStore(db)
    refused = new Set()
    opened = []
    service = null
  })
  afterEach(async () => {
    await service?.stop()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const FARM: Farm = { file: null, knownHosts: '/k', nodes: [node('n1'), node('n2')], platforms: {} }

  it('reports nodes online with their sample, announcing each probe once with the state and sample together', async () => {
    refused.add('n2')
    const { s, events } = start(FARM)
    await vi.waitFor(() => expect(changedOf(events, 'n1').length).toBeGreaterThanOrEqual(3), {
      timeout: 3000,
    })
    const first = changedOf(events, 'n1')[0]!.payload as NodeLiveView
    // The first probe took it online and brought its first sample: one event, with both.
    expect(first).toMatchObject({ health: 'online', canTakeNewJobs: true })
    expect(first.sample).toMatchObject({ cpus: 2, containersOurs: 0 })
    expect(s.nodes().map((n) => [n.name, n.health])).toEqual([
      ['n1', 'online'],
      ['n2', 'unreachable'],
    ])
    expect(s.view('n2')).toMatchObject({ healthReasons: ['connection refused'], sample: null })
    // n2 stays unreachable for the same cause: announced once, not at every probe.
    expect(changedOf(events, 'n2')).toHaveLength(1)
    expect(s.series('n1', Date.now() - 60_000).points.length).toBeGreaterThanOrEqual(3)
    expect(s.events(null, 10).map((e) => `${e.node}:${e.from}->${e.to}`)).toEqual(
      expect.arrayContaining(['n1:offline->online', 'n2:offline->unreachable']),
    )
  })

  it('routes drain, cordon and resume through the monitor: the history and the live state agree, announced at once', async () => {
    const { s, events } = start(FARM)
    await vi.waitFor(() => expect(s.view('n1').health).toBe('online'), { timeout: 3000 })
    const before = changedOf(events, 'n1').length
    const v = s.admin('n1', 'drain', 'disk swap')
    expect(v).toMatchObject({ admin: 'draining', adminReason: 'disk swap', canTakeNewJobs: false })
    expect(metrics.adminStates().get('n1')).toMatchObject({ kind: 'draining', reason: 'disk swap' })
    await Promise.resolve()
    expect(changedOf(events, 'n1').slice(before)[0]!.payload).toMatchObject({ admin: 'draining' })
    // No job of ours there: drained, then cordoned, at the next probe.
    await vi.waitFor(() => expect(s.view('n1').admin).toBe('cordoned'), { timeout: 3000 })
    expect(() => s.admin('n1', 'cordon')).toThrow('cannot cordon n1: the node is already cordoned')
    expect(s.admin('n1', 'resume').admin).toBe('active')
    expect(() => s.admin('n1', 'resume')).toThrow(
      'cannot resume n1: the node is active already: there is nothing to resume',
    )
    const admin = s
      .events('n1', 10)
      .filter((e) => e.kind === 'admin')
      .map((e) => `${e.from}->${e.to}`)
    // Newest first; a probe under way when the drain came dates "drained" from its start, so those two may swap.
    expect(admin[0]).toBe('cordoned->active')
    expect(admin.slice(1).sort()).toEqual(['active->draining', 'draining->cordoned'])
    expect(() => s.admin('n9', 'drain')).toThrow(UnknownNodeError)
  })

  it('keeps the monitor when only declared fields change; a new one when connections change', async () => {
    const { s, events } = start(FARM)
    await vi.waitFor(() => expect(s.view('n2').health).toBe('online'), { timeout: 3000 })
    await s.replaceFarm({ ...FARM, nodes: [node('n1', { labels: ['self-hosted', 'gpu'] }), node('n2')] })
    expect(opened).toHaveLength(1)
    expect(s.view('n1')).toMatchObject({ labels: ['self-hosted', 'gpu'], health: 'online' })
    expect(events.filter((e) => e.event === 'farm.changed')).toEqual([
      { event: 'farm.changed', payload: { file: null } },
    ])

    await s.replaceFarm({ ...FARM, nodes: [node('n1', { port: 2222 }), node('n2')] })
    expect(opened).toHaveLength(2)
    // The new monitor starts from scratch and probes on its own.
    await vi.waitFor(() => expect(opened[1]).toContain('n1'), { timeout: 3000 })
    await vi.waitFor(() => expect(s.view('n1').health).toBe('online'), { timeout: 3000 })
    expect(s.view('n1').address).toBe('ci@n1.lab:2222')
  })

  it('judges the nodes by the health limits of a farm read again, with the same monitor', async () => {
    const { s } = start(FARM)
    await vi.waitFor(() => expect(s.view('n1').health).toBe('online'), { timeout: 3000 })
    // Load 0.5 on 2 cores: above a limit of 0.1 per core, for the farm; n2 allows 1.
    await s.replaceFarm({
      ...FARM,
      health: { loadPerCore: 0.1 },
      nodes: [node('n1'), node('n2', { health: { loadPerCore: 1 } })],
    })
    expect(opened).toHaveLength(1)
    await vi.waitFor(
      () =>
        expect(s.view('n1')).toMatchObject({
          health: 'degraded',
          healthReasons: ['high load (0.5 on 2 cores)'],
        }),
      { timeout: 3000 },
    )
    expect(s.view('n2').health).toBe('online')
  })

  it('edits a node in its farm file, takes the farm as written and says so', async () => {
    const file = join(dir, 'farm.yml')
    writeFileSync(
      file,
      `# the lab
knownHosts: /k
nodes:
  - name: n1 # first
    host: n1.lab
    user: ci
    labels: [linux]
    slots: 2
`,
    )
    const { s, events } = start(loadFarmFile(file))
    const v = await s.editNode('n1', { labels: ['linux', 'gpu'], slots: 3 })
    expect(v).toMatchObject({ name: 'n1', slots: 3 })
    expect(v.labels).toEqual(expect.arrayContaining(['linux', 'gpu']))
    expect(readFileSync(file, 'utf8')).toContain('  - name: n1 # first\n')
    expect(readFileSync(file, 'utf8')).toMatch(/labels: \[linux, gpu\]/)
    expect(s.farm.nodes[0]!.slots).toBe(3)
    expect(events.some((e) => e.event === 'farm.changed')).toBe(true)
    // The next edit is made against the farm as written (its new digest): no "changed on disk".
    expect((await s.editNode('n1', { defaultImage: 'lab/busybox:1' })).slots).toBe(3)
    // An edit the file cannot take is refused with the writer's message, and nothing changes.
    writeFileSync(file, readFileSync(file, 'utf8') + '# edited by hand\n')
    await expect(s.editNode('n1', { slots: 4 })).rejects.toThrow(/changed|since/i)
    expect(s.farm.nodes[0]!.slots).toBe(3)
    await expect(s.editNode('n7', { slots: 4 })).rejects.toThrow(UnknownNodeError)
  })
})
