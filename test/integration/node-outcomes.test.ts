/**
 * What runs tell about nodes, on the lab: a job whose connection is cut mid-step counts as an
 * infrastructure failure of its node, and the third in a row quarantines it (in the history,
 * where the health monitor and the next runs see it); a draining shell node is drained once
 * its last job's workspace is gone, not before.
 */
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSessions } from '../../src/main/core/executor/node-sessions'
import { executeRun } from '../../src/main/core/executor/run-workflow'
import { prepareRun } from '../../src/main/core/executor/prepare-run'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { Farm } from '../../src/main/core/farm/farm-model'
import { HealthMonitor } from '../../src/main/core/farm/health/health-monitor'
import { describeNodeState } from '../../src/main/core/farm/health/node-state'
import { openDatabase, type Db } from '../../src/main/core/store/database'
import { NodeMetricsStore } from '../../src/main/core/store/node-metrics-store'
import { RunStore } from '../../src/main/core/store/run-store'
import { parseWorkflow } from '../../src/main/core/workflow/parse-workflow'
import { tempDir } from '../support/cli'
import { fault, hostEngine, lab } from '../support/lab'

let db: Db
let runs: RunStore
let health: NodeMetricsStore

beforeAll(() => {
  db = openDatabase(tempDir('ym-outcomes-'))
  runs = new RunStore(db)
  health = new NodeMetricsStore(db)
})
afterAll(() => db.close())

/** Polls `check` until it holds; after `ms`, fails saying what, and what `state` says is the case. */
async function until(what: string, check: () => boolean, ms: number, state?: () => string): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${state ? ` (${state()})` : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('job outcomes on the lab', () => {
  it('quarantines a node whose connection drops mid-job for the third time in a row', async () => {
    const farm = loadFarmFile(lab().farmFile)
    // Two earlier jobs on n3 failed for its sake (as runs in another process would have counted).
    health.setInfraFailures('n3', 2, Date.now() - 60_000, 'Not connected')
    const workflow = await parseWorkflow(
      'cut.yml',
      'on: push\njobs:\n  long:\n    runs-on: arm64\n    steps:\n      - run: echo started; sleep 30\n',
    )
    const sessions = new NodeSessions(farm, { timeoutMs: 5000 })
    try {
      const prepared = await prepareRun(workflow, farm, sessions)
      let started = false
      const notices: string[] = []
      const done = executeRun(prepared, {
        store: runs,
        observer: {
          log: (_t, _s, text) => void (text === 'started' && (started = true)),
          notice: (_id, m) => notices.push(m),
        },
      })
      await until('the step started', () => started, 30_000)
      fault('cut-sessions', 'n3')
      const result = await done
      expect(result.state).toBe('failed')
      const job = runs.getRun(result.runId).jobs[0]!
      expect(job).toMatchObject({
        state: 'failed',
        nodeName: 'n3',
        reason: 'step 1 "Run echo started; sleep 30" could not run; not tried again: n3 quarantined',
      })
      expect(job.attempts.map((a) => [a.nodeName, a.state])).toEqual([['n3', 'failed']])
      const admin = health.adminStates().get('n3')
      expect(admin).toMatchObject({ kind: 'quarantined' })
      expect(admin?.kind === 'quarantined' && admin.reason).toMatch(
        /^3 jobs in a row failed for infrastructure reasons \(last: step 1 "Run echo started; sleep 30" could not run: .+\)$/,
      )
      expect(health.events('n3')[0]).toMatchObject({ kind: 'admin', from: 'active', to: 'quarantined' })
      expect(notices).toEqual([
        expect.stringMatching(/^node n3 is quarantined: .*yardmaster node n3 resume$/),
      ])

      // The next run does not start a job there: it says why no node can take it.
      const monitor = new HealthMonitor(farm, sessions, { recorder: health })
      expect(monitor.stateOf('n3')).toMatchObject({ admin: { kind: 'quarantined' }, infraFailures: 3 })
      await monitor.stop()
    } finally {
      await sessions.closeAll()
    }
  }, 60_000)

  it('retries a job whose connection dropped mid-job on another node, where it completes', async () => {
    const lab1 = loadFarmFile(lab().farmFile)
    // n1 and n2 both take it; n1 (more slots) first.
    const farm: Farm = { ...lab1, nodes: lab1.nodes.filter((n) => n.name === 'n1' || n.name === 'n2') }
    const workflow = await parseWorkflow(
      'retry.yml',
      'on: push\njobs:\n  job:\n    runs-on: linux\n    steps:\n      - run: echo started; sleep 4; echo finished\n',
    )
    const sessions = new NodeSessions(farm, { timeoutMs: 5000 })
    try {
      const prepared = await prepareRun(workflow, farm, sessions)
      let first: string | null = null
      let started = false
      const done = executeRun(prepared, {
        store: runs,
        retryBackoffMs: 200,
        observer: {
          jobChanged: (_r, _k, state, d) => void (state === 'running' && (first ??= d.node ?? null)),
          log: (_t, _s, text) => void (text === 'started' && (started = true)),
        },
      })
      await until('the step started', () => started, 30_000)
      fault('cut-sessions', first!)
      const result = await done
      expect(result.state).toBe('succeeded')
      const job = runs.getRun(result.runId).jobs[0]!
      const other = first === 'n1' ? 'n2' : 'n1'
      expect(job.attempts.map((a) => [a.nodeName, a.state])).toEqual([
        [first, 'lost'],
        [other, 'succeeded'],
      ])
      expect(job.attempts[0]!.reason).toBe('step 1 "Run echo started; sleep 4; echo finished" could not run')
      expect(job).toMatchObject({ state: 'succeeded', nodeName: other })
      expect(runs.getLogs(result.runId).map((l) => l.text)).toContain('finished')
      // Neither attempt left its container behind: the cut one's is removed once n1 answers again.
      const instance = runs.instanceId()
      for (const name of ['n1', 'n2'])
        await expect
          .poll(
            async () =>
              (
                await hostEngine(name).listContainers({
                  all: true,
                  filters: {
                    label: [`io.yardmaster.instance=${instance}`, `io.yardmaster.run=${result.runId}`],
                  },
                })
              ).length,
            { timeout: 15_000 },
          )
          .toBe(0)
    } finally {
      await sessions.closeAll()
    }
  }, 90_000)

  it('keeps a draining shell node draining while its job runs, then drained (cordoned)', async () => {
    // n1 as a shell node: jobs run in a workspace under its TMPDIR, no container to count.
    const lab1 = loadFarmFile(lab().farmFile)
    const farm: Farm = {
      ...lab1,
      nodes: lab1.nodes
        .filter((n) => n.name === 'n1')
        .map((n) => ({ ...n, name: 'shell1', executor: 'shell' })),
    }
    const sessions = new NodeSessions(farm, { timeoutMs: 5000 })
    const monitor = new HealthMonitor(farm, sessions, { recorder: health, intervalMs: 500 })
    try {
      monitor.start()
      await until(
        'shell1 online',
        () => monitor.stateOf('shell1')?.health.kind === 'online',
        15_000,
        () => describeNodeState(monitor.stateOf('shell1')!),
      )
      const workflow = await parseWorkflow(
        'drain.yml',
        'on: push\njobs:\n  slow:\n    runs-on: general\n    steps:\n      - run: echo started; sleep 4\n',
      )
      let started = false
      const done = executeRun(await prepareRun(workflow, farm, sessions), {
        store: runs,
        observer: { log: (_t, _s, text) => void (text === 'started' && (started = true)) },
      })
      await until('the step started', () => started, 20_000)
      expect(monitor.apply('shell1', { type: 'drain', at: Date.now(), reason: 'os upgrade' })).toEqual({
        ok: true,
      })
      // While the job runs, the probe counts its workspace: still draining.
      await new Promise((r) => setTimeout(r, 1500))
      expect(monitor.stateOf('shell1')!.admin).toMatchObject({ kind: 'draining', reason: 'os upgrade' })
      const samples = health.series('shell1', Date.now() - 60_000, Date.now()).points
      expect(samples.at(-1)!.containersOurs).toBeGreaterThanOrEqual(1)
      expect((await done).state).toBe('succeeded')
      await until('shell1 drained', () => monitor.stateOf('shell1')!.admin.kind === 'cordoned', 10_000)
      expect(monitor.stateOf('shell1')!.admin).toMatchObject({
        kind: 'cordoned',
        reason: 'drained: os upgrade',
      })
      expect(readdirSync(tmpdir()).filter((f) => /^yardmaster-\d+-slow-/.test(f))).toEqual([])
    } finally {
      await monitor.stop()
      await sessions.closeAll()
    }
  }, 60_000)
})
