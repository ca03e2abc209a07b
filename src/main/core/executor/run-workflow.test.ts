import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { JobState, RunState, StepState } from '../../../shared/model'
import type { Farm, FarmNode } from '../farm/farm-model'
import { InvalidSourceError } from '../source/source-error'
import { openDatabase, type Db } from '../store/database'
import { RunStore } from '../store/run-store'
import { NodeMetricsStore } from '../store/node-metrics-store'
import { parseWorkflow } from '../workflow/parse-workflow'
import type { JobEnvironment, Leftover, JobSetup, NodeExecutor, StepCommand } from './job-environment'
import { NodeSessions, type NodeSession } from './node-sessions'
import { executeRun, type RunObserver } from './run-workflow'
import { NoReachableNodeError, prepareRun } from './prepare-run'
import { localNode } from '../../../../test/support/farm-node'

let dir: string
let db: Db
let store: RunStore

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-run-'))
  db = openDatabase(dir)
  store = new RunStore(db)
})
afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const node = (name: string, labels: string[], extra: Partial<FarmNode> = {}): FarmNode =>
  localNode(name, { executor: 'shell', labels: ['self-hosted', ...labels], slots: 2, ...extra })

const farmOf = (...nodes: FarmNode[]): Farm => ({
  file: '/farms/lab.yml',
  knownHosts: '/nowhere',
  nodes,
  platforms: {},
})

/** Sessions whose nodes open to the given executor, or fail with the given error. */
function fakeSessions(open: Record<string, NodeExecutor | Error>): NodeSessions {
  return {
    open: (n: FarmNode): Promise<NodeSession> => {
      const e = open[n.name]
      if (!e) return Promise.reject(new Error(`${n.name}: no such node in the test`))
      if (e instanceof Error) return Promise.reject(e)
      return Promise.resolve({ node: n, executor: e, close: () => {} })
    },
  } as unknown as NodeSessions
}

/** Records everything an observer hears, as short strings. */
function recorder() {
  const events: string[] = []
  const logs: string[] = []
  const stored: number[] = []
  const observer: RunObserver = {
    runChanged: (_id, s: RunState) => events.push(`run ${s}`),
    jobChanged: (_id, job, s: JobState, d) => events.push(`job ${job} ${s}${d.node ? ` on ${d.node}` : ''}`),
    stepChanged: (_id, job, i, _name, s: StepState, code) =>
      events.push(`step ${job}[${i}] ${s}${code === null ? '' : ` ${code}`}`),
    log: (t, stream, text) => logs.push(`${t.jobKey}[${t.stepIndex}] ${stream}: ${text}`),
    logsStored: (_id, seq) => stored.push(seq),
  }
  return { events, logs, stored, observer }
}

// GitHub's schema requires `on:`; these tests are about running, so give every workflow one.
const wf = (text: string) => parseWorkflow('ci.yml', /^on:/m.test(text) ? text : `on: push\n${text}`)

describe('executeRun on local shells', () => {
  it('gives every step a file-command folder of its own that no earlier step can know', async () => {
    const workflow = await wf(`jobs:
  a:
    runs-on: linux
    outputs: { verdict: '\${{ steps.check.outputs.verdict }}' }
    steps:
      - name: plant
        run: |
          for d in "$RUNNER_TEMP"/_runner_file_commands/*; do
            [ "$d" = "$(dirname "$GITHUB_ENV")" ] && continue # its own: allowed
            echo verdict=approved >> "$d/output"; echo EVIL=1 >> "$d/env"
          done
      - id: check
        run: echo "checked, nothing to say"
      - run: echo "verdict=[\${{ steps.check.outputs.verdict }}] EVIL=[\${EVIL:-}]"
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const r = recorder()
    const result = await executeRun(await prepareRun(workflow, farm, sessions), {
      store,
      observer: r.observer,
    })
    await sessions.closeAll()
    expect(result.state).toBe('succeeded')
    expect(r.logs, r.logs.join('\n')).toContain('a[2] stdout: verdict=[] EVIL=[]')
  })

  it('records when a running run is expected to finish once its jobs have history; unknown before, gone after', async () => {
    const workflow = await wf(`jobs:
  a:
    runs-on: linux
    steps:
      - run: sleep 0.2
  b:
    needs: a
    runs-on: linux
    steps:
      - run: sleep 0.2
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const once = async () => {
      const seen: Array<{ at: number; finish: number | null }> = []
      const observer: RunObserver = {
        jobChanged: (runId, key, state) => {
          if (key === 'a' && state === 'running')
            seen.push({ at: Date.now(), finish: store.getRun(runId).run.expectedFinish })
        },
      }
      const result = await executeRun(await prepareRun(workflow, farm, sessions), { store, observer })
      expect(result.state).toBe('succeeded')
      expect(store.getRun(result.runId).run.expectedFinish).toBeNull()
      return seen
    }
    expect(await once()).toEqual([{ at: expect.any(Number), finish: null }])
    const [second] = await once()
    // a and b took time before: the run is expected to end after now, when b has run too.
    expect(second!.finish).toBeGreaterThan(second!.at)
    await sessions.closeAll()
  })

  it('ends a job or a step that runs past its timeout-minutes, saying after how long', async () => {
    const workflow = await wf(`jobs:
  whole:
    runs-on: linux
    timeout-minutes: 0.05
    steps:
      - run: sleep 30
  one:
    runs-on: linux
    steps:
      - run: sleep 30
        timeout-minutes: 0.02
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const result = await executeRun(await prepareRun(workflow, farm, sessions), { store })
    await sessions.closeAll()
    const jobs = new Map(store.getRun(result.runId).jobs.map((j) => [j.key, j]))
    expect(jobs.get('whole')!.reason).toBe(
      'step 1 "Run sleep 30" was stopped: the job timed out after 3 s (timeout-minutes)',
    )
    expect(jobs.get('one')!.reason).toBe('step 1 "Run sleep 30" timed out after 1.2 s (timeout-minutes)')
    expect(store.getLogs(result.runId).map((l) => l.text)).toContain(
      'the step timed out after 1.2 s (timeout-minutes)',
    )
  }, 30_000)

  it("records how to reproduce a job's own failure: node, step, env names, the script as it ran, secrets masked", async () => {
    const workflow = await wf(`jobs:
  test:
    runs-on: linux
    env: { LEVEL: job }
    steps:
      - run: echo fine
      - name: check
        run: |
          echo "token \${{ secrets.TOKEN }}"
          exit 3
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const result = await executeRun(
      await prepareRun(workflow, farm, sessions, { secrets: { TOKEN: 's3cr3t-value' } }),
      { store },
    )
    await sessions.closeAll()
    const job = store.getRun(result.runId).jobs[0]!
    expect(job.state).toBe('failed')
    expect(job.repro).toMatchObject({
      node: 'here',
      address: null,
      image: null,
      imageId: null,
      step: { index: 1, name: 'check' },
      shell: 'bash',
      workingDirectory: null,
      script: 'echo "token ***"\nexit 3\n',
    })
    expect(job.repro!.env).toEqual(expect.arrayContaining(['LEVEL', 'CI', 'GITHUB_SHA']))
    expect(JSON.stringify(job.repro)).not.toContain('s3cr3t-value')
    // A failure of the node's, or a success, has none.
    const ok = await executeRun(
      await prepareRun(
        await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: "true" }] }\n'),
        farm,
        sessions,
      ),
      { store },
    )
    expect(store.getRun(ok.runId).jobs[0]!.repro).toBeNull()
  })

  it('runs a step whose block holds an expression with its lines as written (a here-document ends)', async () => {
    const workflow = await wf(`jobs:
  py:
    runs-on: linux
    steps:
      - shell: sh
        run: |
          cat <<EOF
          hello from \${{ github.job }}
          EOF
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const result = await executeRun(await prepareRun(workflow, farm, sessions), { store })
    await sessions.closeAll()
    expect(result.state).toBe('succeeded')
    expect(store.getLogs(result.runId).map((l) => l.text)).toContain('hello from py')
  })

  it('runs jobs in need order and records everything', async () => {
    const workflow = await wf(`name: ci
env: { LEVEL: workflow, WF: w }
jobs:
  build:
    runs-on: linux
    env: { LEVEL: job }
    steps:
      - run: echo "$LEVEL $WF $CI $YARDMASTER $GITHUB_JOB $GITHUB_WORKFLOW $RUNNER_NAME"
      - name: to stderr
        run: echo oops >&2; printf partial
        env: { LEVEL: step }
  test:
    runs-on: linux
    needs: build
    steps:
      - run: echo "run $GITHUB_RUN_ID"
`)
    const farm = farmOf(node('here', ['linux']))
    const sessions = new NodeSessions(farm)
    const prepared = await prepareRun(workflow, farm, sessions)
    expect(prepared.unreachable).toEqual([])
    const r = recorder()
    const result = await executeRun(prepared, { store, observer: r.observer })
    await sessions.closeAll()

    expect(result.state).toBe('succeeded')
    expect(r.events).toEqual([
      'run running',
      'job build running on here',
      'step build[0] running',
      'step build[0] succeeded 0',
      'step build[1] running',
      'step build[1] succeeded 0',
      'job build succeeded',
      'job test running on here',
      'step test[0] running',
      'step test[0] succeeded 0',
      'job test succeeded',
      'run succeeded',
    ])
    expect(r.logs).toEqual([
      'build[null] system: job build on node here (this machine)',
      'build[0] stdout: job w true true build ci here',
      'build[1] stderr: oops',
      'build[1] stdout: partial',
      'test[null] system: job test on node here (this machine)',
      `test[0] stdout: run ${result.runId}`,
    ])

    const detail = store.getRun(result.runId)
    expect(detail.run).toMatchObject({
      state: 'succeeded',
      workflowName: 'ci',
      workflowFile: resolve('ci.yml'),
      jobCount: 2,
    })
    expect(detail.run.startedAt).not.toBeNull()
    expect(detail.run.finishedAt).not.toBeNull()
    expect(detail.jobs.map((j) => [j.key, j.state, j.nodeName, j.image, j.exitCode, j.reason])).toEqual([
      ['build', 'succeeded', 'here', null, 0, null],
      ['test', 'succeeded', 'here', null, 0, null],
    ])
    expect(detail.jobs[0]!.steps.map((s) => [s.name, s.state, s.exitCode])).toEqual([
      ['Run echo "$LEVEL $WF $CI $YARDMASTER $GITHUB_JOB $GITHUB_WORKFLOW $RUNNER_NAME"', 'succeeded', 0],
      ['to stderr', 'succeeded', 0],
    ])
    // Everything the observer saw was stored, in order.
    expect(
      store.getLogs(result.runId).map((l) => `${l.jobKey}[${l.stepIndex}] ${l.stream}: ${l.text}`),
    ).toEqual(r.logs)
    expect(r.stored.at(-1)).toBe(store.lastSeq())
  })

  it('a failing step skips the rest of its job and the jobs that need it', async () => {
    const workflow = await wf(`jobs:
  a:
    runs-on: linux
    steps:
      - run: echo about to fail; exit 3
      - run: echo never
  b:
    runs-on: linux
    needs: a
    steps:
      - run: echo never either
  c:
    runs-on: linux
    needs: b
    steps:
      - run: echo nor this
  other:
    runs-on: linux
    steps:
      - run: echo independent
`)
    const farm = farmOf(node('here', ['linux']))
    const result = await executeRun(await prepareRun(workflow, farm, new NodeSessions(farm)), { store })
    expect(result.state).toBe('failed')
    const jobs = store.getRun(result.runId).jobs
    expect(jobs.map((j) => [j.key, j.state, j.exitCode, j.reason])).toEqual([
      ['a', 'failed', 3, 'step 1 "Run echo about to fail; exit 3" exited with code 3'],
      ['b', 'skipped', null, 'needs job "a", which failed'],
      ['c', 'skipped', null, 'needs job "b", which was skipped'],
      ['other', 'succeeded', 0, null],
    ])
    expect(jobs[0]!.steps.map((s) => [s.state, s.exitCode])).toEqual([
      ['failed', 3],
      ['skipped', null],
    ])
    expect(jobs[1]!.steps.map((s) => s.state)).toEqual(['skipped'])
    expect(store.getLogs(result.runId).map((l) => l.text)).not.toContain('never')
  })

  it('cancelling kills the running step and cancels what has not started', async () => {
    const workflow = await wf(`jobs:
  slow:
    runs-on: linux
    steps:
      - run: echo started; sleep 30
      - run: echo never
  after:
    runs-on: linux
    needs: slow
    steps:
      - run: echo never
`)
    const farm = farmOf(node('here', ['linux']))
    const ac = new AbortController()
    const r = recorder()
    const observer: RunObserver = {
      ...r.observer,
      log: (t, s, text) => {
        r.observer.log!(t, s, text)
        if (text === 'started') ac.abort()
      },
    }
    const started = Date.now()
    const result = await executeRun(await prepareRun(workflow, farm, new NodeSessions(farm)), {
      store,
      observer,
      signal: ac.signal,
    })
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(result.state).toBe('cancelled')
    const jobs = store.getRun(result.runId).jobs
    expect(jobs.map((j) => [j.key, j.state, j.reason])).toEqual([
      ['slow', 'cancelled', 'the run was cancelled'],
      ['after', 'cancelled', 'the run was cancelled before the job started'],
    ])
    expect(jobs[0]!.steps.map((s) => s.state)).toEqual(['cancelled', 'cancelled'])
    expect(jobs[1]!.steps.map((s) => s.state)).toEqual(['cancelled'])
    expect(store.getRun(result.runId).run.state).toBe('cancelled')
  })

  it('never runs more jobs on a node than it has slots', async () => {
    const workflow = await wf(`jobs:
  a: { runs-on: linux, steps: [{ run: sleep 0.2 }] }
  b: { runs-on: linux, steps: [{ run: sleep 0.2 }] }
  c: { runs-on: linux, steps: [{ run: sleep 0.2 }] }
`)
    const farm = farmOf(node('one', ['linux'], { slots: 1 }))
    const result = await executeRun(await prepareRun(workflow, farm, new NodeSessions(farm)), { store })
    expect(result.state).toBe('succeeded')
    const jobs = store.getRun(result.runId).jobs
    for (let i = 1; i < jobs.length; i++)
      expect(jobs[i]!.startedAt!).toBeGreaterThanOrEqual(jobs[i - 1]!.finishedAt!)
  })
})

describe('node slots across runs sharing the history', () => {
  it('two runs at once never put more jobs on a node than its slots; the later one waits, saying why', async () => {
    const workflow = await wf(`jobs:
  a: { runs-on: linux, steps: [{ run: sleep 0.3 }] }
  b: { runs-on: linux, steps: [{ run: sleep 0.3 }] }
`)
    const farm = farmOf(node('one', ['linux'], { slots: 1 }))
    const notices: string[] = []
    // Two connections to one history, as two processes have.
    const other = new RunStore(openDatabase(dir))
    const first = await prepareRun(workflow, farm, new NodeSessions(farm))
    const second = await prepareRun(workflow, farm, new NodeSessions(farm))
    let started!: () => void
    const firstRunning = new Promise<void>((r) => (started = r))
    const x = executeRun(first, {
      store,
      concurrencyPollMs: 20,
      observer: { jobChanged: (_id, _job, state) => state === 'running' && started() },
    })
    await firstRunning
    const y = executeRun(second, {
      store: other,
      concurrencyPollMs: 20,
      observer: { notice: (_id, t) => notices.push(t) },
    })
    const [a, b] = await Promise.all([x, y])
    expect([a.state, b.state]).toEqual(['succeeded', 'succeeded'])
    const spans = [a.runId, b.runId]
      .flatMap((id) => store.getRun(id).jobs)
      .map((j) => [j.startedAt!, j.finishedAt!] as const)
      .sort((p, q) => p[0] - q[0])
    expect(spans).toHaveLength(4)
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1])
    expect(notices[0]).toBe('job a waits: 1 node fits; it is busy')
    other.db.close()
  })
})

describe('executeRun with fake executors', () => {
  function fakeExecutor(opts: { prepare?: Error; step?: (script: string) => number | Error } = {}) {
    const setups: JobSetup[] = []
    const steps: StepCommand[] = []
    let disposed = 0
    const executor: NodeExecutor = {
      prepare: (setup, progress) => {
        setups.push(setup)
        progress('pulling image')
        if (opts.prepare) return Promise.reject(opts.prepare)
        const env: JobEnvironment = {
          description: 'fake',
          ref: 'fake-ref',
          temp: '/tmp/fake',
          workspace: '/ws',
          runStep: (cmd, onOutput) => {
            steps.push(cmd)
            onOutput('stdout', Buffer.from(`ran ${cmd.script}\n`))
            const r = opts.step?.(cmd.script) ?? 0
            return r instanceof Error ? Promise.reject(r) : Promise.resolve(r)
          },
          dispose: () => {
            disposed++
            return Promise.resolve(true)
          },
        }
        return Promise.resolve(env)
      },
      fence: () => Promise.resolve(),
    }
    return { executor, setups, steps, disposed: () => disposed }
  }

  it('gives docker jobs their container image, or the node default', async () => {
    const workflow = await wf(`jobs:
  own: { runs-on: linux, container: node:20, steps: [{ run: a }] }
  dflt: { runs-on: linux, steps: [{ run: b }] }
`)
    const fake = fakeExecutor()
    const farm = farmOf(node('d', ['linux'], { executor: 'docker', defaultImage: 'debian:bookworm' }))
    const r = recorder()
    const result = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: fake.executor })), {
      store,
      observer: r.observer,
    })
    expect(result.state).toBe('succeeded')
    expect(fake.setups.map((s) => [s.jobKey, s.image])).toEqual([
      ['own', 'node:20'],
      ['dflt', 'debian:bookworm'],
    ])
    // Every environment is tagged with this history's instance id and the run id.
    expect(fake.setups.map((s) => [s.instance, s.runId])).toEqual([
      [store.instanceId(), result.runId],
      [store.instanceId(), result.runId],
    ])
    expect(store.getRun(result.runId).jobs.map((j) => j.image)).toEqual(['node:20', 'debian:bookworm'])
    expect(r.logs).toContain('own[null] system: job own on node d (this machine) in image node:20')
    expect(r.logs).toContain('own[null] system: pulling image')
    expect(fake.disposed()).toBe(2)
  })

  it("gives steps the job's env over its container's, and the runner's GITHUB_* over both", async () => {
    const workflow = await wf(`env: { FOO: workflow, GITHUB_SHA: forged }
jobs:
  a:
    runs-on: linux
    env: { BAR: job }
    container: { image: node:20, env: { FOO: container, BAR: container, ONLY: container } }
    steps: [{ run: a }]
`)
    const fake = fakeExecutor()
    const farm = farmOf(node('d', ['linux'], { executor: 'docker' }))
    await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: fake.executor })), { store })
    expect(fake.steps[0]!.env).toMatchObject({ FOO: 'workflow', BAR: 'job', ONLY: 'container' })
    expect(fake.steps[0]!.env.GITHUB_SHA).not.toBe('forged')
  })

  it('records the farm file given, or the farm’s own', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: a }] }\n')
    const farm = farmOf(node('d', ['linux']))
    const prepared = await prepareRun(workflow, farm, fakeSessions({ d: fakeExecutor().executor }))
    const { runId } = await executeRun(prepared, { store, farmFile: '/other/farm.yml' })
    expect(db.prepare('SELECT farm_file AS f FROM runs WHERE id = ?').get(runId)).toEqual({
      f: '/other/farm.yml',
    })
    const again = await executeRun(prepared, { store })
    expect(db.prepare('SELECT farm_file AS f FROM runs WHERE id = ?').get(again.runId)).toEqual({
      f: '/farms/lab.yml',
    })
  })

  it('fails a job whose environment cannot be prepared, and skips its steps', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }, { run: y }] }\n')
    const fake = fakeExecutor({ prepare: new Error('image not found') })
    const farm = farmOf(node('d', ['linux']))
    const result = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: fake.executor })), {
      store,
      retries: 0,
    })
    expect(result.state).toBe('failed')
    const job = store.getRun(result.runId).jobs[0]!
    expect(job).toMatchObject({ state: 'failed', reason: 'could not start the job on d: image not found' })
    expect(job.steps.map((s) => s.state)).toEqual(['skipped', 'skipped'])
  })

  it('fails a step that cannot run at all, and still disposes the environment', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }, { run: y }] }\n')
    const fake = fakeExecutor({ step: (s) => (s === 'x' ? new Error('channel closed') : 0) })
    const farm = farmOf(node('d', ['linux']))
    const result = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: fake.executor })), {
      store,
      retries: 0,
    })
    expect(result.state).toBe('failed')
    const job = store.getRun(result.runId).jobs[0]!
    expect(job).toMatchObject({ state: 'failed', exitCode: null, reason: 'step 1 "Run x" could not run' })
    expect(job.steps.map((s) => s.state)).toEqual(['failed', 'skipped'])
    expect(store.getLogs(result.runId).map((l) => l.text)).toContain('the step could not run: channel closed')
    expect(fake.disposed()).toBe(1)
  })

  it('quarantines a node after 3 infrastructure failures in a row; later jobs go elsewhere or fail saying so', async () => {
    const workflow = await wf(`jobs:
  a: { runs-on: linux, steps: [{ run: a }] }
  b: { runs-on: linux, needs: a, if: always(), steps: [{ run: b }] }
  c: { runs-on: linux, needs: b, if: always(), steps: [{ run: c }] }
  d: { runs-on: linux, needs: c, if: always(), steps: [{ run: d }] }
  e: { runs-on: linux, needs: d, if: always(), steps: [{ run: e }] }
  f: { runs-on: linux, needs: e, if: always(), steps: [{ run: f }] }
`)
    // sick: the engine fails; spare: only used once sick is out (it has fewer free slots).
    let calls = 0
    const sick: NodeExecutor = {
      prepare: () => {
        calls++
        // The second failure is the job's own (an image nobody has): the node answered, so the
        // count starts again; three more in a row quarantine it.
        return Promise.reject(
          calls === 2
            ? Object.assign(new Error('(HTTP code 404) no such image'), { statusCode: 404 })
            : Object.assign(new Error('(HTTP code 500) server error - no space left on device'), {
                statusCode: 500,
              }),
        )
      },
      fence: async () => {},
    }
    const spare = fakeExecutor()
    const farm = farmOf(node('sick', ['linux'], { slots: 4 }), node('spare', ['linux'], { slots: 1 }))
    const r = recorder()
    const notices: string[] = []
    const result = await executeRun(
      await prepareRun(workflow, farm, fakeSessions({ sick, spare: spare.executor })),
      { store, retries: 0, observer: { ...r.observer, notice: (_id, m) => notices.push(m) } },
    )
    const jobs = store.getRun(result.runId).jobs
    expect(jobs.map((j) => [j.key, j.state, j.nodeName])).toEqual([
      ['a', 'failed', 'sick'],
      ['b', 'failed', 'sick'],
      ['c', 'failed', 'sick'],
      ['d', 'failed', 'sick'],
      ['e', 'failed', 'sick'],
      ['f', 'succeeded', 'spare'],
    ])
    const why =
      '3 jobs in a row failed for infrastructure reasons (last: could not start a job: the engine failed: (HTTP code 500) server error - no space left on device)'
    const health = new NodeMetricsStore(db)
    expect(health.adminStates().get('sick')).toMatchObject({ kind: 'quarantined', reason: why })
    expect(health.infraFailures().get('sick')).toBe(3)
    expect(health.events('sick')).toMatchObject([
      { kind: 'admin', from: 'active', to: 'quarantined', reason: why },
    ])
    expect(notices).toEqual([
      `node sick is quarantined: ${why}. Jobs not started yet go to other nodes; once it is mended: yardmaster node sick resume`,
    ])
    // A job that ran on spare reset nothing of sick's, and counted for spare.
    expect(health.infraFailures().get('spare')).toBeUndefined()
  })

  it('fails a job whose only node was quarantined during the run, saying why', async () => {
    const workflow = await wf(`jobs:
  a: { runs-on: linux, steps: [{ run: a }] }
  b: { runs-on: linux, needs: a, if: always(), steps: [{ run: b }] }
`)
    const health = new NodeMetricsStore(db)
    // Two failures already counted by earlier runs (in any process).
    health.setInfraFailures('only', 2, 1, 'connection lost')
    const broken: NodeExecutor = {
      prepare: () => Promise.reject(new Error('Not connected')),
      fence: async () => {},
    }
    const result = await executeRun(
      await prepareRun(workflow, farmOf(node('only', ['linux'])), fakeSessions({ only: broken })),
      { store, retries: 0 },
    )
    const jobs = store.getRun(result.runId).jobs
    expect(jobs[1]).toMatchObject({
      state: 'failed',
      nodeName: null,
      reason:
        'no node left to take it: only (quarantined: 3 jobs in a row failed for infrastructure reasons (last: could not start a job: Not connected))',
    })
    expect(jobs[1]!.steps.map((s) => s.state)).toEqual(['skipped'])
  })

  it('counts a step that could not run (the connection dropped) against the node, and a job that ran resets it', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }] }\n')
    const farm = farmOf(node('d', ['linux']))
    const health = new NodeMetricsStore(db)
    const dropped = fakeExecutor({ step: () => new Error('channel closed') })
    await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: dropped.executor })), {
      store,
      retries: 0,
    })
    expect(health.infraFailures().get('d')).toBe(1)
    const exits = fakeExecutor({ step: () => 2 })
    await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: exits.executor })), { store })
    expect(health.infraFailures().get('d')).toBeUndefined()
  })

  it("retries a job that failed for its node's sake on another node, recording each attempt", async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }] }\n')
    const dropped = fakeExecutor({ step: () => new Error('channel closed') })
    const good = fakeExecutor()
    // first takes it first (more free slots); second is where the retry goes.
    const farm = farmOf(node('first', ['linux'], { slots: 3 }), node('second', ['linux'], { slots: 1 }))
    const notices: string[] = []
    const result = await executeRun(
      await prepareRun(workflow, farm, fakeSessions({ first: dropped.executor, second: good.executor })),
      { store, retryBackoffMs: 1, observer: { notice: (_id, m) => notices.push(m) } },
    )
    expect(result.state).toBe('succeeded')
    const job = store.getRun(result.runId).jobs[0]!
    expect(job).toMatchObject({ state: 'succeeded', nodeName: 'second', reason: null })
    expect(job.attempts.map((a) => [a.number, a.nodeName, a.state, a.reason])).toEqual([
      // Cut off mid-step: what became of it on first is unknown, so it is lost, not failed.
      [1, 'first', 'lost', 'step 1 "Run x" could not run'],
      [2, 'second', 'succeeded', null],
    ])
    expect(notices).toEqual([
      expect.stringMatching(
        /^job a: attempt 1 failed on first for the node's sake \(step 1 "Run x" could not run\); attempt 2 \(retry 1 of at most 2\) starts in about \d+ s on another node$/,
      ),
    ])
    // The job's log says so, between the attempts, and each line says which attempt it came from.
    const logLines = store.getLogs(result.runId)
    const said = logLines.findIndex((l) => l.text === notices[0]!.replace('job a: ', ''))
    expect(logLines[said]!.attempt).toBe(1)
    expect(logLines.slice(0, said).every((l) => l.attempt === 1)).toBe(true)
    expect(logLines.slice(said + 1).map((l) => [l.attempt, l.text])).toContainEqual([
      2,
      expect.stringMatching(/^job a on node second.*, attempt 2$/),
    ])
    expect(logLines.slice(said + 1).every((l) => l.attempt === 2)).toBe(true)
  })

  it("never retries a job's own failure; retries on the same node when no other fits, a bounded number of times", async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }] }\n')
    const farm = farmOf(node('d', ['linux']))
    const exits = fakeExecutor({ step: () => 2 })
    const own = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: exits.executor })), {
      store,
      retryBackoffMs: 1,
    })
    expect(store.getRun(own.runId).jobs[0]!.attempts.map((a) => a.state)).toEqual(['failed'])
    const dropped = fakeExecutor({ step: () => new Error('channel closed') })
    const infra = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: dropped.executor })), {
      store,
      retries: 2,
      retryBackoffMs: 1,
    })
    expect(infra.state).toBe('failed')
    const job = store.getRun(infra.runId).jobs[0]!
    expect(job).toMatchObject({ state: 'failed', reason: 'step 1 "Run x" could not run' })
    expect(job.attempts.map((a) => [a.nodeName, a.state])).toEqual([
      ['d', 'lost'],
      ['d', 'lost'],
      // The last one is the job's result.
      ['d', 'failed'],
    ])
    expect(store.getLogs(infra.runId).map((l) => l.text)).toContain(
      'attempt 1 failed on d for the node\'s sake (step 1 "Run x" could not run); attempt 2 (retry 1 of at most 2) starts in about 0 s, on d again (no other node fits)',
    )
  })

  it('fences what an attempt left on a node that did not answer, before the node takes the next job', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }] }\n')
    const farm = farmOf(node('d', ['linux']))
    const fenced: Leftover[] = []
    let leave = true
    const base = fakeExecutor()
    const executor: NodeExecutor = {
      prepare: async (setup, progress, signal) => {
        const env = await base.executor.prepare(setup, progress, signal)
        // The first attempt's removal fails (the node stopped answering); later ones go.
        const left = leave
        leave = false
        return { ...env, ref: `c-${setup.runId}`, dispose: async () => !left }
      },
      fence: async (l) => void fenced.push(l),
    }
    const first = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: executor })), { store })
    expect(first.state).toBe('succeeded')
    expect(store.fencesOn('d').map((f) => f.leftover)).toEqual([
      { instance: store.instanceId(), runId: first.runId, jobKey: 'a', attempt: 1, ref: `c-${first.runId}` },
    ])
    expect(fenced).toEqual([])
    const second = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: executor })), {
      store,
    })
    expect(second.state).toBe('succeeded')
    // Fenced before the job was prepared there, and said in its log; nothing is marked any more.
    expect(fenced.map((l) => l.ref)).toEqual([`c-${first.runId}`])
    expect(base.setups[1]).toMatchObject({ runId: second.runId, attempt: 1 })
    expect(store.fencesOn('d')).toEqual([])
    expect(store.getLogs(second.runId).map((l) => l.text)).toContain(
      `stopped and removed what attempt 1 of run ${first.runId} job a left on d`,
    )
  })

  it('gives no work to a node whose leftovers cannot be fenced, and says why', async () => {
    const workflow = await wf('jobs:\n  a: { runs-on: linux, steps: [{ run: x }] }\n')
    const farm = farmOf(node('d', ['linux']))
    const ok = fakeExecutor()
    const run1 = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: ok.executor })), {
      store,
    })
    // As if its removal had failed.
    const { id } = db.prepare('SELECT id FROM attempts ORDER BY id DESC LIMIT 1').get() as { id: number }
    store.markFence(id)
    const stuck = fakeExecutor()
    const executor: NodeExecutor = {
      ...stuck.executor,
      fence: () => Promise.reject(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })),
    }
    const run2 = await executeRun(await prepareRun(workflow, farm, fakeSessions({ d: executor })), {
      store,
      retries: 0,
    })
    expect(run2.state).toBe('failed')
    expect(stuck.setups).toEqual([])
    expect(store.getRun(run2.runId).jobs[0]!.reason).toMatch(
      new RegExp(
        `^could not start the job on d: could not stop what attempt 1 of run ${run1.runId} job a left on d: connect ETIMEDOUT`,
      ),
    )
    expect(store.fencesOn('d')).toHaveLength(1)
  })

  it('spreads jobs over the candidate with the most free slots', async () => {
    const workflow = await wf(`jobs:
  a: { runs-on: linux, steps: [{ run: a }] }
  b: { runs-on: linux, steps: [{ run: b }] }
`)
    const farm = farmOf(node('small', ['linux'], { slots: 1 }), node('big', ['linux'], { slots: 3 }))
    const fake = fakeExecutor()
    const result = await executeRun(
      await prepareRun(workflow, farm, fakeSessions({ small: fake.executor, big: fake.executor })),
      { store },
    )
    expect(store.getRun(result.runId).jobs.map((j) => j.nodeName)).toEqual(['big', 'big'])
  })
})

describe('prepareRun', () => {
  it('refuses a job no node can take, at the job, before recording anything', async () => {
    const workflow = await wf('jobs:\n  gpu:\n    runs-on: [linux, gpu]\n    steps: [{ run: a }]\n')
    const farm = farmOf(node('n1', ['linux']))
    try {
      await prepareRun(workflow, farm, fakeSessions({}))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidSourceError)
      expect((e as InvalidSourceError).problems).toEqual([
        {
          file: 'ci.yml',
          line: 3, // after the `on: push` line wf() adds
          col: 3,
          path: 'jobs.gpu.runs-on',
          message:
            'job "gpu" cannot run on this farm (/farms/lab.yml): no node can take [linux, gpu]: n1 [self-hosted, linux] lacks label gpu',
        },
      ])
    }
    expect(store.listRuns()).toEqual([])
  })

  it('refuses a host path no node allows, at the volume, saying what to change; takes a node that allows it', async () => {
    const workflow = await wf(
      [
        'jobs:',
        '  build:',
        '    runs-on: linux',
        '    container:',
        '      image: debian',
        '      volumes: [cache:/c, /:/host]',
        '    steps: [{ run: a }]',
        '',
      ].join('\n'),
    )
    const docker = (name: string, extra: Partial<FarmNode> = {}) =>
      node(name, ['linux'], {
        executor: 'docker',
        source: { file: '/farms/lab.yml', line: 4, col: 5 },
        ...extra,
      })
    try {
      await prepareRun(workflow, farmOf(docker('n1')), fakeSessions({}))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidSourceError)
      expect((e as InvalidSourceError).problems).toEqual([
        {
          file: 'ci.yml',
          line: 7,
          col: 27,
          path: 'jobs.build.container.volumes[1]',
          message:
            '"/:/host" would bind-mount the host path "/", which no node that can take job "build" allows: ' +
            'host paths are refused unless the farm file opens them. Use a named volume (name:/host), ' +
            'or add "/" to allowedHostPaths of node n1 in /farms/lab.yml:4',
        },
      ])
    }
    expect(store.listRuns()).toEqual([])
    const idle: NodeExecutor = {
      prepare: () => Promise.reject(new Error('not run in this test')),
      fence: async () => {},
    }
    const farm = farmOf(docker('closed'), docker('open', { allowedHostPaths: ['/'] }))
    const prepared = await prepareRun(workflow, farm, fakeSessions({ open: idle }))
    expect(prepared.instances.get('build')![0]!.nodes.map((n) => n.name)).toEqual(['open'])
  })

  it('fails with every reason when no candidate of a job can be reached', async () => {
    const workflow = await wf('jobs:\n  a:\n    runs-on: linux\n    steps: [{ run: a }]\n')
    const farm = farmOf(node('n1', ['linux']), node('n2', ['linux']))
    const err = await prepareRun(
      workflow,
      farm,
      fakeSessions({ n1: new Error('n1 refused'), n2: new Error('n2 timed out') }),
    ).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NoReachableNodeError)
    expect((err as NoReachableNodeError).failures).toEqual([
      { job: 'a', reasons: ['n1 refused', 'n2 timed out'] },
    ])
    expect((err as Error).message).toBe(
      'the run did not start, nothing was recorded:\n  job a: no reachable node:\n    - n1 refused\n    - n2 timed out',
    )
  })

  it('keeps going when a job still has a reachable node, and reports the others', async () => {
    const workflow = await wf('jobs:\n  a:\n    runs-on: linux\n    steps: [{ run: a }]\n')
    const farm = farmOf(node('down', ['linux']), node('up', ['linux']), node('unused', ['mac']))
    const prepared = await prepareRun(
      workflow,
      farm,
      fakeSessions({
        down: new Error('refused'),
        up: { prepare: () => Promise.reject(new Error('x')), fence: async () => {} },
      }),
    )
    expect(prepared.instances.get('a')![0]!.nodes.map((n) => n.name)).toEqual(['up'])
    expect(prepared.unreachable.map((u) => [u.node.name, u.reason])).toEqual([['down', 'refused']])
    expect([...prepared.opened.keys()]).toEqual(['up'])
  })
})

describe('concurrency groups', () => {
  const slow = (group: string, cancel = false) =>
    wf(
      `on: push\nconcurrency: { group: ${group}, cancel-in-progress: ${cancel} }\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: sleep 0.6\n`,
    )

  it('runs a second run of the group after the first, and tells the observer why it waits', async () => {
    const farm = farmOf(node('here', ['linux']))
    const notices: string[] = []
    const waits: Array<ReturnType<RunStore['waitingJobs']>> = []
    const one = executeRun(await prepareRun(await slow('deploy'), farm, new NodeSessions(farm)), {
      store,
      concurrencyPollMs: 20,
    })
    await new Promise((r) => setTimeout(r, 150))
    const two = executeRun(await prepareRun(await slow('deploy'), farm, new NodeSessions(farm)), {
      store,
      concurrencyPollMs: 20,
      observer: {
        notice: (_id, t) => {
          notices.push(t)
          waits.push(store.waitingJobs())
        },
      },
    })
    const [a, b] = await Promise.all([one, two])
    expect([a.state, b.state]).toEqual(['succeeded', 'succeeded'])
    expect(notices).toEqual([`waiting: concurrency group "deploy" is held by run ${a.runId}`])
    // The queue says why the second run's job waits while it does, and nothing once it ran.
    expect(waits).toEqual([
      [
        expect.objectContaining({
          runId: b.runId,
          key: 'a',
          reason: `waiting for concurrency group "deploy" (held by run ${a.runId})`,
          position: null,
        }),
      ],
    ])
    expect(store.waitingJobs()).toEqual([])
    const first = store.getRun(a.runId).run
    const second = store.getRun(b.runId).run
    expect(second.startedAt!).toBeGreaterThanOrEqual(first.finishedAt!)
  })

  it('with cancel-in-progress cancels the running run, saying why', async () => {
    const farm = farmOf(node('here', ['linux']))
    const one = executeRun(await prepareRun(await slow('ci', true), farm, new NodeSessions(farm)), {
      store,
      concurrencyPollMs: 20,
    })
    await new Promise((r) => setTimeout(r, 200))
    const two = executeRun(await prepareRun(await slow('ci', true), farm, new NodeSessions(farm)), {
      store,
      concurrencyPollMs: 20,
    })
    const [a, b] = await Promise.all([one, two])
    expect([a.state, b.state]).toEqual(['cancelled', 'succeeded'])
    expect(store.getRun(a.runId).jobs[0]!.reason).toBe(
      `cancelled by run ${b.runId} in concurrency group "ci" (cancel-in-progress)`,
    )
  })
})
