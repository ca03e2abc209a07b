/**
 * The health monitor on the lab, with its default timings (probe every 5 s, 4 s limit): an
 * unreachable host (traffic dropped) is detected within 15 s and is online again after healing,
 * with nothing happening to the other hosts; a frozen engine is reported as such; drain, cordon
 * and resume from the CLI are kept in the data dir and seen by the monitor and by `nodes`.
 * Detection and recovery times are printed for the record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSessions } from '../../src/main/core/executor/node-sessions'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { Farm } from '../../src/main/core/farm/farm-model'
import { HealthMonitor, type NodeStateChanged } from '../../src/main/core/farm/health/health-monitor'
import { describeNodeState } from '../../src/main/core/farm/health/node-state'
import { SshPool } from '../../src/main/core/transport/ssh-pool'
import { openDatabase, type Db } from '../../src/main/core/store/database'
import { NodeMetricsStore } from '../../src/main/core/store/node-metrics-store'
import { cli, tempDir } from '../support/cli'
import { fault, hostEngine, lab } from '../support/lab'

let farm: Farm
let pool: SshPool
let sessions: NodeSessions
let monitor: HealthMonitor
let db: Db
let store: NodeMetricsStore
let dataDir: string
const changes: NodeStateChanged[] = []

/**
 * Resolves with the first change (from now on) that `match` accepts, or rejects after `ms`,
 * saying what each node is then and why (a node `degraded` for high load, not just "not online").
 */
function next(match: (c: NodeStateChanged) => boolean, ms: number): Promise<NodeStateChanged> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      const now = [...monitor.states()].map(([n, s]) => `${n}: ${describeNodeState(s)}`).join('; ')
      reject(new Error(`no such state change within ${ms} ms (now ${now})`))
    }, ms)
    const off = monitor.subscribe((c) => {
      if (!match(c)) return
      clearTimeout(timer)
      off()
      resolve(c)
    })
  })
}

beforeAll(async () => {
  farm = loadFarmFile(lab().farmFile)
  dataDir = tempDir('ym-health-')
  db = openDatabase(dataDir)
  store = new NodeMetricsStore(db)
  pool = new SshPool()
  sessions = new NodeSessions(farm, { pool, timeoutMs: 4000 })
  monitor = new HealthMonitor(farm, sessions, { recorder: store })
  monitor.subscribe((c) => changes.push(c))
  const allOnline = Promise.all(
    ['n1', 'n2', 'n3'].map((n) => next((c) => c.node === n && c.to.health.kind === 'online', 20_000)),
  )
  monitor.start()
  await allOnline
}, 30_000)

afterAll(async () => {
  fault('heal', 'n3')
  fault('thaw', 'n2')
  await monitor.stop()
  await sessions.closeAll()
  pool.closeAll()
  db.close()
})

describe('health monitor on the lab', () => {
  it('detects an unreachable host within 15 s, brings it back after heal, and leaves the others alone', async () => {
    const figures: Record<string, number> = {}
    const before = changes.length
    try {
      const t0 = Date.now()
      const down = next((c) => c.node === 'n3' && c.to.health.kind === 'unreachable', 20_000)
      fault('unreachable', 'n3')
      const d = await down
      figures.detectedMs = d.at - t0
      expect(figures.detectedMs).toBeLessThan(15_000)
      expect(d.description).toMatch(/^unreachable \(/)
      expect(monitor.canTakeNewJobs('n3')).toBe(false)

      const t1 = Date.now()
      const up = next((c) => c.node === 'n3' && c.to.health.kind === 'online', 60_000)
      fault('heal', 'n3')
      figures.recoveredMs = (await up).at - t1
    } finally {
      fault('heal', 'n3')
    }
    // n1 and n2 never changed state meanwhile.
    expect(changes.slice(before).filter((c) => c.node !== 'n3')).toEqual([])
    // The whole health, so that a failure shows why (the reasons of a degraded node).
    expect(monitor.stateOf('n1')!.health).toEqual({ kind: 'online', since: expect.any(Number) })
    expect(monitor.stateOf('n2')!.health).toEqual({ kind: 'online', since: expect.any(Number) })
    // The history has the misses and the events: down, then (perhaps slow for a moment) online.
    const events = store.events('n3', 5).reverse()
    console.log(`n3 events: ${JSON.stringify(events.map((e) => [e.from, e.to, e.reason]))}`)
    const downAt = events.findIndex((e) => e.from === 'online' && e.to === 'unreachable')
    expect(downAt).toBeGreaterThanOrEqual(0)
    expect(events.at(-1)!.to).toBe('online')
    const series = store.series('n3', Date.now() - 10 * 60_000, Date.now())
    expect(series.resolution).toBe('sample')
    expect(series.points.some((p) => p.reachable === 0)).toBe(true)
    expect(series.points.at(-1)).toMatchObject({ reachable: 1 })
    console.log(`health monitor figures: ${JSON.stringify(figures)}`)
  }, 90_000)

  it('reports a frozen engine as such, and recovers when it thaws', async () => {
    try {
      const frozen = next((c) => c.node === 'n2' && c.to.health.kind === 'unreachable', 20_000)
      fault('freeze', 'n2')
      const c = await frozen
      expect(c.to.health).toMatchObject({
        cause: 'engine',
        reason: 'SSH answers but the Docker engine does not: no answer within 4000 ms',
      })
      const back = next((x) => x.node === 'n2' && x.to.health.kind === 'online', 30_000)
      fault('thaw', 'n2')
      await back
    } finally {
      fault('thaw', 'n2')
    }
  }, 60_000)

  it('drain, cordon and resume from the CLI: kept in the data dir, seen by the monitor and by nodes', async () => {
    const farmFile = lab().farmFile
    // A job still running there (a container of ours): draining waits for it.
    const name = 'n3'
    const engine = hostEngine(name)
    const job = await engine.createContainer({
      Image: 'lab/busybox:1',
      Cmd: ['sleep', '300'],
      Labels: { 'io.yardmaster.managed': 'true', 'io.yardmaster.job': 'health-test' },
    })
    try {
      await job.start()
      const others = (
        await engine.listContainers({ filters: { label: ['io.yardmaster.managed=true'] } })
      ).filter((c) => c.Id !== job.id)
      // Another suite's job on the shared lab would keep it draining; this test needs the node to itself.
      expect(others.map((c) => c.Names)).toEqual([])

      const draining = next((c) => c.node === name && c.to.admin.kind === 'draining', 10_000)
      const drain = await cli([
        'node',
        name,
        'drain',
        '--reason',
        'disk swap',
        '--farm',
        farmFile,
        '--data-dir',
        dataDir,
      ])
      expect(drain.code).toBe(0)
      expect(drain.out).toBe(
        `${name} is draining (disk swap): its running jobs finish, it takes no new ones, then it is cordoned\n` +
          `undo with: yardmaster node ${name} resume\n`,
      )
      await draining
      expect(monitor.canTakeNewJobs(name)).toBe(false)
      // Two probes later it is still draining: its job runs.
      await new Promise((r) => setTimeout(r, 11_000))
      expect(monitor.stateOf(name)!.admin.kind).toBe('draining')

      // The job ends: drained at the next probe, so cordoned.
      const cordoned = next((c) => c.node === name && c.to.admin.kind === 'cordoned', 15_000)
      await job.remove({ force: true })
      await cordoned
    } finally {
      await job.remove({ force: true }).catch(() => {})
    }

    const again = await cli(['node', name, 'cordon', '--farm', farmFile, '--data-dir', dataDir])
    expect(again.code).toBe(1)
    expect(again.err).toBe(`yardmaster node ${name} cordon: the node is already cordoned\n`)

    const nodes = await cli(['nodes', '--farm', farmFile, '--data-dir', dataDir, '--runs-on', 'linux'])
    expect(nodes.out).toMatch(
      new RegExp(
        `^${name}: cordoned: drained: disk swap since \\d{4}-.*\\(yardmaster node ${name} resume\\)$`,
        'm',
      ),
    )
    expect(nodes.out).toContain(`  ${name}: cannot: cordoned: drained: disk swap`)
    expect(nodes.out).toContain('a job with runs-on [linux]: 2 of 3 nodes can take it')

    const resumed = next((c) => c.node === name && c.to.admin.kind === 'active', 10_000)
    const resume = await cli(['node', name, 'resume', '--farm', farmFile, '--data-dir', dataDir])
    expect(resume.out).toBe(`${name} takes jobs again (it was cordoned)\n`)
    await resumed
    expect(monitor.canTakeNewJobs(name)).toBe(true)
    const twice = await cli(['node', name, 'resume', '--farm', farmFile, '--data-dir', dataDir, '--json'])
    expect(twice.code).toBe(1)
    expect(JSON.parse(twice.out)).toEqual({
      node: name,
      error: 'the node is active already: there is nothing to resume',
    })
    expect(
      store
        .events(name)
        .filter((e) => e.kind === 'admin')
        .map((e) => `${e.from}->${e.to}`),
    ).toEqual(['cordoned->active', 'draining->cordoned', 'active->draining'])
  }, 90_000)

  it('nodes --watch prints every state change until stopped, and keeps the history', async () => {
    const dir = tempDir('ym-watch-')
    const stop = new AbortController()
    setTimeout(() => stop.abort(), 3000)
    const r = await cli(['nodes', '--watch', '--farm', lab().farmFile, '--data-dir', dir], stop.signal)
    expect(r.code).toBe(0)
    expect(r.err).toBe(`watching 3 nodes every 5 s (history: ${dir}); Ctrl-C stops\n`)
    for (const n of ['n1', 'n2', 'n3'])
      expect(r.out).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${n}: offline -> online$`, 'm'))
    const watchDb = openDatabase(dir)
    try {
      const history = new NodeMetricsStore(watchDb)
      expect(history.events('n2').map((e) => `${e.from}->${e.to}`)).toEqual(['offline->online'])
      expect(history.series('n2', Date.now() - 60_000, Date.now()).points.length).toBeGreaterThanOrEqual(1)
    } finally {
      watchDb.close()
    }
  })
})
