import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, type Db } from './database'
import { RunNotFoundError, RunStore, type NewLogLine, type NewRun } from './run-store'

let dir: string
let db: Db
let store: RunStore
const others: Db[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-store-'))
  db = openDatabase(dir)
  store = new RunStore(db)
})
afterEach(() => {
  for (const o of others.splice(0)) o.close()
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const RUN: NewRun = {
  workflowName: 'ci',
  workflowFile: '/repo/ci.yml',
  farmFile: '/repo/farm.yml',
  jobs: [
    { key: 'build', name: 'Build', needs: [], runsOn: ['linux'], steps: ['Run make', 'Run make check'] },
    { key: 'deploy', name: 'deploy', needs: ['build'], runsOn: ['linux', 'prod'], steps: ['Run ./deploy'] },
  ],
}

const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

describe('createRun', () => {
  it('records the run, its jobs and steps, all pending', () => {
    const created = store.createRun(RUN, 1000)
    expect([...created.jobIds.keys()]).toEqual(['build', 'deploy'])
    expect(created.stepIds.get('build')).toHaveLength(2)
    expect(created.stepIds.get('deploy')).toHaveLength(1)

    const detail = store.getRun(created.runId)
    expect(detail.run).toEqual({
      id: created.runId,
      workflowName: 'ci',
      workflowFile: '/repo/ci.yml',
      state: 'queued',
      createdAt: 1000,
      startedAt: null,
      finishedAt: null,
      expectedFinish: null,
      cancelling: null,
      jobCount: 2,
    })
    expect(detail.jobs.map((j) => [j.id, j.key, j.name, j.state, j.needs, j.runsOn])).toEqual([
      [created.jobIds.get('build'), 'build', 'Build', 'pending', [], ['linux']],
      [created.jobIds.get('deploy'), 'deploy', 'deploy', 'pending', ['build'], ['linux', 'prod']],
    ])
    expect(detail.jobs[0]!.steps).toEqual([
      {
        index: 0,
        name: 'Run make',
        state: 'pending',
        exitCode: null,
        conclusion: null,
        startedAt: null,
        finishedAt: null,
      },
      {
        index: 1,
        name: 'Run make check',
        state: 'pending',
        exitCode: null,
        conclusion: null,
        startedAt: null,
        finishedAt: null,
      },
    ])
    expect(detail.jobs[1]!.steps.map((s) => s.name)).toEqual(['Run ./deploy'])
  })

  it('is atomic: when a job cannot be recorded, no trace of the run remains', () => {
    store.createRun(RUN)
    const before = { runs: count('runs'), jobs: count('jobs'), steps: count('steps') }
    const bad: NewRun = {
      ...RUN,
      jobs: [RUN.jobs[0]!, { ...RUN.jobs[1]!, key: 'build' }], // UNIQUE (run_id, job_key)
    }
    expect(() => store.createRun(bad)).toThrow(/UNIQUE constraint failed: jobs.run_id, jobs.job_key/)
    expect({ runs: count('runs'), jobs: count('jobs'), steps: count('steps') }).toEqual(before)
    expect(store.listRuns()).toHaveLength(1)
  })

  it('gives each run its own ids', () => {
    const a = store.createRun(RUN)
    const b = store.createRun(RUN)
    expect(b.runId).toBeGreaterThan(a.runId)
    expect(b.jobIds.get('build')).not.toBe(a.jobIds.get('build'))
  })
})

describe('addJob and renameJob (jobs found while the run goes on: matrix instances)', () => {
  it('adds a pending job with its steps to a running run, then gives it its instance key, name and labels', () => {
    const created = store.createRun(RUN)
    const added = store.addJob(created.runId, {
      key: 'test',
      name: 'test',
      needs: ['build'],
      runsOn: ['${{ matrix.os }}'],
      steps: ['Run npm ci', 'Run npm test'],
    })
    expect(added.stepIds).toHaveLength(2)
    store.renameJob(added.jobId, 'test (ubuntu, 20)', 'test (ubuntu, 20)', ['ubuntu'])
    const job = store.getRun(created.runId).jobs.find((j) => j.id === added.jobId)!
    expect([job.key, job.name, job.state, job.needs, job.runsOn]).toEqual([
      'test (ubuntu, 20)',
      'test (ubuntu, 20)',
      'pending',
      ['build'],
      ['ubuntu'],
    ])
    expect(job.steps.map((st) => [st.index, st.name, st.state])).toEqual([
      [0, 'Run npm ci', 'pending'],
      [1, 'Run npm test', 'pending'],
    ])
    // The step ids are the job's steps, by index.
    store.updateStep(added.stepIds[1]!, { state: 'running' })
    const steps = store.getRun(created.runId).jobs.find((j) => j.id === added.jobId)!.steps
    expect(steps.map((st) => st.state)).toEqual(['pending', 'running'])
    expect(store.listRuns()[0]!.jobCount).toBe(3)
  })

  it('is atomic: a job whose key the run already has leaves no steps behind', () => {
    const created = store.createRun(RUN)
    const before = { jobs: count('jobs'), steps: count('steps') }
    expect(() =>
      store.addJob(created.runId, { key: 'build', name: 'again', needs: [], runsOn: [], steps: ['Run x'] }),
    ).toThrow(/UNIQUE constraint failed: jobs.run_id, jobs.job_key/)
    expect({ jobs: count('jobs'), steps: count('steps') }).toEqual(before)
  })
})

describe('requestRunCancel', () => {
  it('records why a run should stop, for the process running it, and keeps the first reason', () => {
    const { runId } = store.createRun(RUN)
    const other = store.createRun(RUN).runId
    expect(store.runCancelRequest(runId)).toBeNull()
    store.requestRunCancel(runId, 'cancelled by alice from the console')
    store.requestRunCancel(runId, 'superseded by run 7 (cancel-in-progress)')
    // Another connection to the history (the process running it) sees it.
    const theirs = openDatabase(dir)
    others.push(theirs)
    expect(new RunStore(theirs).runCancelRequest(runId)).toBe('cancelled by alice from the console')
    expect(store.runCancelRequest(other)).toBeNull()
    expect(store.runCancelRequest(9999)).toBeNull()
  })
})

describe('state updates', () => {
  it('setRunState stamps started_at for running and finished_at for end states', () => {
    const { runId } = store.createRun(RUN, 1)
    store.setRunState(runId, 'running', 10)
    expect(store.getRun(runId).run).toMatchObject({ state: 'running', startedAt: 10, finishedAt: null })
    store.setRunState(runId, 'failed', 20)
    expect(store.getRun(runId).run).toMatchObject({ state: 'failed', startedAt: 10, finishedAt: 20 })
  })

  it('refuses a move the state machines do not allow, and a state they do not know', () => {
    const { runId, jobIds, stepIds } = store.createRun(RUN)
    store.setRunState(runId, 'running')
    store.setRunState(runId, 'failed')
    expect(() => store.setRunState(runId, 'queued')).toThrow(
      `run ${runId} cannot go from failed to queued: failed is final`,
    )
    const job = jobIds.get('build')!
    store.updateJob(job, { state: 'skipped' })
    expect(() => store.updateJob(job, { state: 'running' })).toThrow(
      /cannot go from skipped to running: skipped is final/,
    )
    const step = stepIds.get('build')![0]!
    expect(() => store.updateStep(step, { state: 'succeeded' })).toThrow(
      `step ${step} cannot go from pending to succeeded; from pending it goes to running, skipped, cancelled, failed`,
    )
    const other = store.createRun(RUN)
    expect(() => store.setRunState(other.runId, 'exploded' as never)).toThrow(
      /cannot go from queued to exploded/,
    )
  })

  it('says a run and its unfinished jobs are cancelling once asked, until they end', () => {
    const { runId, jobIds } = store.createRun(RUN)
    store.setRunState(runId, 'running')
    store.updateJob(jobIds.get('build')!, { state: 'running' })
    expect(store.getRun(runId).run.cancelling).toBeNull()
    store.requestJobCancel(jobIds.get('deploy')!, 'cancelled from the console')
    expect(store.getRun(runId).jobs.map((j) => j.cancelling)).toEqual([null, 'cancelled from the console'])
    store.requestRunCancel(runId, 'cancelled by the CLI')
    const asked = store.getRun(runId)
    expect(asked.run.cancelling).toBe('cancelled by the CLI')
    expect(asked.jobs.map((j) => j.cancelling)).toEqual([
      'cancelled by the CLI',
      'cancelled from the console',
    ])
    store.updateJob(jobIds.get('build')!, { state: 'cancelled' })
    store.setRunState(runId, 'cancelled')
    const ended = store.getRun(runId)
    expect(ended.run.cancelling).toBeNull()
    expect(ended.jobs[0]!.cancelling).toBeNull()
  })

  it('shows the expected finish only while the run runs', () => {
    const { runId } = store.createRun(RUN)
    store.setExpectedFinish(runId, 5_000)
    expect(store.getRun(runId).run.expectedFinish).toBeNull()
    store.setRunState(runId, 'running')
    expect(store.getRun(runId).run.expectedFinish).toBe(5_000)
    expect(store.listRuns()[0]!.expectedFinish).toBe(5_000)
    store.setRunState(runId, 'succeeded')
    expect(store.getRun(runId).run.expectedFinish).toBeNull()
  })

  it('updateJob changes only the fields given, and can clear them', () => {
    const { runId, jobIds } = store.createRun(RUN)
    const id = jobIds.get('build')!
    store.updateJob(id, { state: 'running', nodeName: 'n1', image: 'debian', startedAt: 5 })
    store.updateJob(id, { state: 'failed', exitCode: 2, reason: 'step 1 failed', finishedAt: 9 })
    expect(store.getRun(runId).jobs[0]).toMatchObject({
      state: 'failed',
      nodeName: 'n1',
      image: 'debian',
      exitCode: 2,
      reason: 'step 1 failed',
      startedAt: 5,
      finishedAt: 9,
    })
    store.updateJob(id, { reason: null })
    store.updateJob(id, {})
    expect(store.getRun(runId).jobs[0]).toMatchObject({ state: 'failed', reason: null, nodeName: 'n1' })
    expect(store.getRun(runId).jobs[1]!.state).toBe('pending')
  })

  it('updateStep changes one step', () => {
    const { runId, stepIds } = store.createRun(RUN)
    store.updateStep(stepIds.get('build')![1]!, { state: 'running' })
    store.updateStep(stepIds.get('build')![1]!, {
      state: 'succeeded',
      exitCode: 0,
      startedAt: 3,
      finishedAt: 4,
    })
    store.updateStep(stepIds.get('build')![0]!, {})
    const steps = store.getRun(runId).jobs[0]!.steps
    expect(steps[0]!.state).toBe('pending')
    expect(steps[1]).toEqual({
      index: 1,
      name: 'Run make check',
      state: 'succeeded',
      conclusion: null,
      exitCode: 0,
      startedAt: 3,
      finishedAt: 4,
    })
  })
})

describe('waitingJobs', () => {
  it("gives a waiting job its run's class (a terminal's run has no queue entry), and drops it once it no longer waits", () => {
    const { runId, jobIds } = store.createRun({ ...RUN, priority: 'high' })
    store.setRunState(runId, 'running')
    const id = jobIds.get('build')!
    store.setGroupWait([id], 'waiting for concurrency group "deploy" (held by run 1)', 50)
    expect(store.waitingJobs()).toEqual([
      {
        runId,
        jobId: id,
        key: 'build',
        priority: 'high',
        since: 50,
        reason: 'waiting for concurrency group "deploy" (held by run 1)',
        counts: {},
        position: null,
        expectedStart: null,
      },
    ])
    store.setGroupWait([id], null, 60)
    expect(store.waitingJobs()).toEqual([])
  })
})

describe('attempts', () => {
  it("numbers a job's attempts from 1, ends each once, and shows them first to last in getRun", () => {
    const { runId, jobIds } = store.createRun(RUN)
    const job = jobIds.get('build')!
    const first = store.startAttempt({ jobId: job, node: 'n2', claimId: 7, holder: 'h', at: 10 })
    store.endAttempt(first.id, 'preempted', 'preempted by hotfix job fix (run 9)', 20)
    const second = store.startAttempt({ jobId: job, node: 'n1', claimId: 8, holder: 'h', at: 30 })
    expect([first.number, second.number]).toEqual([1, 2])
    // Another job's attempts are numbered on their own.
    expect(
      store.startAttempt({ jobId: jobIds.get('deploy')!, node: 'n1', claimId: 9, holder: 'h', at: 31 })
        .number,
    ).toBe(1)
    store.endAttempt(second.id, 'succeeded', null, 40)
    expect(store.getRun(runId).jobs[0]!.attempts).toEqual([
      {
        number: 1,
        nodeName: 'n2',
        state: 'preempted',
        reason: 'preempted by hotfix job fix (run 9)',
        startedAt: 10,
        finishedAt: 20,
      },
      { number: 2, nodeName: 'n1', state: 'succeeded', reason: null, startedAt: 30, finishedAt: 40 },
    ])
    expect(() => store.endAttempt(second.id, 'lost', 'lost: gone')).toThrow(
      `attempt ${second.id} cannot go from succeeded to lost: succeeded is final`,
    )
    expect(() => store.endAttempt(999, 'failed', null)).toThrow('no attempt 999 in this history')
  })
})

describe('listRuns and getRun', () => {
  it('lists the newest runs first, up to the limit', () => {
    const ids = [1, 2, 3, 4].map((i) => store.createRun({ ...RUN, workflowName: `w${i}` }, i).runId)
    expect(store.listRuns().map((r) => r.id)).toEqual([...ids].reverse())
    expect(store.listRuns(2).map((r) => r.workflowName)).toEqual(['w4', 'w3'])
    // The limit is clamped to 1..1000 rather than trusted.
    expect(store.listRuns(0)).toHaveLength(1)
    expect(store.listRuns(-5)).toHaveLength(1)
  })

  it('counts the jobs of each run', () => {
    store.createRun({ ...RUN, jobs: [] })
    store.createRun(RUN)
    expect(store.listRuns().map((r) => r.jobCount)).toEqual([2, 0])
  })

  it('throws RunNotFoundError for a run that does not exist', () => {
    expect(() => store.getRun(42)).toThrow(RunNotFoundError)
    try {
      store.getRun(42)
    } catch (e) {
      expect(e).toMatchObject({
        name: 'RunNotFoundError',
        runId: 42,
        message: 'run 42 does not exist; list runs with `yardmaster history`',
      })
    }
  })
})

describe('logs', () => {
  function lines(runId: number, jobId: number, n: number, stepIndex: number | null = 0): NewLogLine[] {
    return Array.from({ length: n }, (_, i) => ({
      runId,
      jobId,
      stepIndex,
      ...(i % 2 ? { attempt: 2 } : {}),
      stream: i % 2 ? 'stderr' : 'stdout',
      text: `line ${i}`,
      at: 100 + i,
    }))
  }

  it('appends in order and returns the last seq', () => {
    const { runId, jobIds } = store.createRun(RUN)
    expect(store.lastSeq()).toBe(0)
    const last = store.appendLogs(lines(runId, jobIds.get('build')!, 3))
    expect(last).toBe(store.lastSeq())
    const got = store.getLogs(runId)
    expect(got.map((l) => l.text)).toEqual(['line 0', 'line 1', 'line 2'])
    expect(got[1]).toEqual({
      seq: got[0]!.seq + 1,
      runId,
      jobKey: 'build',
      stepIndex: 0,
      attempt: 2,
      stream: 'stderr',
      text: 'line 1',
      at: 101,
    })
    // A line given no attempt (about the job, outside its attempts) reads back as null.
    expect(got[0]!.attempt).toBeNull()
    expect(got[2]!.seq).toBe(last)
  })

  it('stores a batch larger than one multi-row insert whole and in order, fields intact', () => {
    const { runId, jobIds } = store.createRun(RUN)
    // 123: two inserts of 50 rows, then 23 one by one.
    const batch = lines(runId, jobIds.get('build')!, 123)
    const last = store.appendLogs(batch)
    const got = store.getLogs(runId, 0, 1000)
    expect(got.map((l) => [l.text, l.stream, l.attempt, l.at])).toEqual(
      batch.map((l) => [l.text, l.stream, l.attempt ?? null, l.at]),
    )
    expect(got.map((l) => l.seq)).toEqual(Array.from({ length: 123 }, (_, i) => got[0]!.seq + i))
    expect(last).toBe(got.at(-1)!.seq)
  })

  it('appending nothing changes nothing and returns the current last seq', () => {
    const { runId, jobIds } = store.createRun(RUN)
    const last = store.appendLogs(lines(runId, jobIds.get('build')!, 2))
    expect(store.appendLogs([])).toBe(last)
    expect(count('log_lines')).toBe(2)
  })

  it('pages with afterSeq and limit, and keeps runs apart', () => {
    const a = store.createRun(RUN)
    const b = store.createRun(RUN)
    store.appendLogs(lines(a.runId, a.jobIds.get('build')!, 5))
    store.appendLogs(lines(b.runId, b.jobIds.get('deploy')!, 2, null))
    store.appendLogs(lines(a.runId, a.jobIds.get('deploy')!, 1, 0))

    const all = store.getLogs(a.runId)
    expect(all.map((l) => [l.jobKey, l.text])).toEqual([
      ['build', 'line 0'],
      ['build', 'line 1'],
      ['build', 'line 2'],
      ['build', 'line 3'],
      ['build', 'line 4'],
      ['deploy', 'line 0'],
    ])
    expect(store.getLogs(a.runId, all[1]!.seq, 2).map((l) => l.text)).toEqual(['line 2', 'line 3'])
    expect(store.getLogs(a.runId, all[5]!.seq)).toEqual([])
    expect(store.getLogs(b.runId).map((l) => [l.jobKey, l.stepIndex])).toEqual([
      ['deploy', null],
      ['deploy', null],
    ])
    expect(store.getLogs(a.runId, 0, 0)).toHaveLength(1) // limit clamped to at least 1
  })

  it('refuses log lines for a job that does not exist (foreign keys are on)', () => {
    const { runId } = store.createRun(RUN)
    expect(() => store.appendLogs(lines(runId, 9999, 1))).toThrow(/FOREIGN KEY constraint failed/)
    expect(count('log_lines')).toBe(0)
  })
})

describe('instanceId', () => {
  it('is made once per history and then stays the same, for every connection', () => {
    const id = store.instanceId()
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(store.instanceId()).toBe(id)
    const other = openDatabase(dir)
    others.push(other)
    expect(new RunStore(other).instanceId()).toBe(id)
  })

  it('differs between histories', () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'ym-store-'))
    const other = openDatabase(otherDir)
    try {
      expect(new RunStore(other).instanceId()).not.toBe(store.instanceId())
    } finally {
      other.close()
      rmSync(otherDir, { recursive: true, force: true })
    }
  })
})

describe('dataVersion', () => {
  it('moves when another connection commits, not on our own writes', () => {
    const other = openDatabase(dir)
    others.push(other)
    const before = store.dataVersion()
    store.createRun(RUN)
    expect(store.dataVersion()).toBe(before)
    new RunStore(other).createRun(RUN)
    const after = store.dataVersion()
    expect(after).not.toBe(before)
    expect(store.listRuns()).toHaveLength(2)
    expect(store.dataVersion()).toBe(after)
  })
})

describe('jobDurations', () => {
  it("gives a workflow job's succeeded durations newest first, matrix instances included, nothing else", () => {
    const add = (
      file: string,
      key: string,
      state: 'succeeded' | 'failed',
      start: number,
      end: number,
      node = 'n1',
    ) => {
      const { jobIds } = store.createRun({ ...RUN, workflowFile: file, jobs: [{ ...RUN.jobs[0]!, key }] })
      store.updateJob(jobIds.get(key)!, { state, nodeName: node, startedAt: start, finishedAt: end })
    }
    add('/repo/ci.yml', 'build', 'succeeded', 0, 100)
    add('/repo/ci.yml', 'build (linux, 20)', 'succeeded', 0, 200, 'n2')
    add('/repo/ci.yml', 'build', 'failed', 0, 999)
    add('/repo/ci.yml', 'buildx', 'succeeded', 0, 999)
    add('/repo/ci.yml', 'build_ (x)', 'succeeded', 0, 999)
    add('/repo/other.yml', 'build', 'succeeded', 0, 999)
    expect(store.jobDurations('/repo/ci.yml', 'build')).toEqual([
      { node: 'n2', durationMs: 200 },
      { node: 'n1', durationMs: 100 },
    ])
  })
})
