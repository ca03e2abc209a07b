import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { farmOf, localNode } from '../../../../test/support/farm-node'
import { NodeSessions } from '../executor/node-sessions'
import { InvalidInputError } from '../executor/run-contexts'
import type { FarmNode } from '../farm/farm-model'
import { InvalidSourceError } from '../source/source-error'
import { openDatabase, type Db } from '../store/database'
import { ClaimStore } from '../store/claim-store'
import { QueueStore } from '../store/queue-store'
import { RunStore } from '../store/run-store'
import { hostname } from 'node:os'
import { Orchestrator } from './orchestrator'

let dir: string
let db: Db
let orchestrators: Orchestrator[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-orch-'))
  db = openDatabase(dir)
})
afterEach(async () => {
  await Promise.all(orchestrators.map((o) => o.stop()))
  orchestrators = []
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const shell = (slots = 2): FarmNode =>
  localNode('here', { executor: 'shell', labels: ['self-hosted', 'linux'], slots })

function orchestrator(node = shell(), over: { preemption?: boolean } = {}) {
  const farm = farmOf([node], over)
  const sessions = new NodeSessions(farm)
  const o = new Orchestrator({ db, farm: () => farm, sessions: () => sessions, pollMs: 20 }).start()
  orchestrators.push(o)
  return o
}

const workflow = (name: string, text: string) => {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

/** Waits until `check` holds (state written by the orchestrator's own loop). */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 2000; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`never happened: ${what}`)
}

const dispatch = `on:
  workflow_dispatch:
    inputs:
      greeting: { type: string, required: true }
      loud: { type: boolean, default: false }
      level: { type: choice, options: [info, warn], default: warn }
jobs:
  hello:
    runs-on: linux
    steps:
      - run: echo "\${{ inputs.greeting }} \${{ inputs.loud }} \${{ inputs.level }}"
`

describe('Orchestrator', () => {
  it('queues a trigger, runs it with its inputs, and links the entry to the run', async () => {
    const o = orchestrator()
    const entry = await o.trigger({
      workflowFile: workflow('hello.yml', dispatch),
      inputs: { greeting: 'hi', loud: 'true' },
    })
    expect(entry.priority).toBe('normal')
    await o.idle()
    const runId = o.runOf(entry.id)!
    const detail = o.runs.getRun(runId)
    expect(detail.run.state).toBe('succeeded')
    expect(o.runs.getLogs(runId, 0, 100).map((l) => l.text)).toContain('hi true warn')

    expect(o.queue().runs).toEqual([])
  })

  it("queues a run in its workflow's own class unless the trigger chooses one; a re-run keeps the class", async () => {
    const o = orchestrator()
    const file = workflow(
      'release.yml',
      'on: push\nenv:\n  YARDMASTER_PRIORITY: high\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: echo\n',
    )
    const own = await o.trigger({ workflowFile: file })
    const chosen = await o.trigger({ workflowFile: file, priority: 'low' })
    expect([own.priority, chosen.priority]).toEqual(['high', 'low'])
    await o.idle()
    expect((await o.rerun(o.runOf(own.id)!, { kind: 'all' })).priority).toBe('high')
    await o.idle()
  })

  it('refuses a bad trigger with the problem, and records nothing', async () => {
    const o = orchestrator()
    const file = workflow('hello.yml', dispatch)
    await expect(o.trigger({ workflowFile: file, inputs: {} })).rejects.toThrow(InvalidInputError)
    await expect(o.trigger({ workflowFile: file, inputs: { greeting: 'x', nope: '1' } })).rejects.toThrow(
      /nope/,
    )
    await expect(o.trigger({ workflowFile: file, inputs: { greeting: 'x', loud: 'maybe' } })).rejects.toThrow(
      /loud/,
    )
    const broken = workflow(
      'broken.yml',
      'on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - runn: echo\n',
    )
    const e = await o.trigger({ workflowFile: broken }).catch((x: Error) => x)
    expect(e).toBeInstanceOf(InvalidSourceError)
    expect((e as Error).message).toMatch(/broken\.yml:6:\d+/)
    await expect(o.trigger({ workflowFile: join(dir, 'missing.yml') })).rejects.toThrow(
      /cannot read the workflow/,
    )
    expect(new QueueStore(db).waiting()).toEqual([])
    expect(o.runs.listRuns(10)).toEqual([])
  })

  it('cancels a running run, and one job of a run while the others go on', async () => {
    const o = orchestrator()
    const slow = workflow(
      'slow.yml',
      'on: push\njobs:\n  long:\n    runs-on: linux\n    steps:\n      - run: sleep 30\n  quick:\n    runs-on: linux\n    steps:\n      - run: sleep 0.3; echo done\n',
    )
    const a = await o.trigger({ workflowFile: slow })
    await until(
      () =>
        o.runOf(a.id) !== null &&
        o.runs.getRun(o.runOf(a.id)!).jobs.some((j) => j.key === 'long' && j.state === 'running'),
      'long runs',
    )
    const runA = o.runOf(a.id)!
    o.cancelJob(runA, 'long')
    await until(() => o.runs.getRun(runA).run.state !== 'running', 'run A ends')
    const jobs = o.runs.getRun(runA).jobs
    expect(jobs.find((j) => j.key === 'long')).toMatchObject({
      state: 'cancelled',
      reason: 'cancelled from the console',
    })
    expect(jobs.find((j) => j.key === 'quick')!.state).toBe('succeeded')
    expect(() => o.cancelJob(runA, 'quick')).toThrow(/already ended \(succeeded\)/)
    expect(() => o.cancelJob(runA, 'nope')).toThrow(/has no job "nope"/)

    const b = await o.trigger({ workflowFile: slow })
    await until(
      () => o.runOf(b.id) !== null && o.runs.getRun(o.runOf(b.id)!).run.state === 'running',
      'run B runs',
    )
    const runB = o.runOf(b.id)!
    o.cancelRun(runB)
    await until(() => o.runs.getRun(runB).run.state === 'cancelled', 'run B cancelled')
    expect(() => o.cancelRun(runB)).toThrow(/ended \(cancelled\)/)
  })

  it('cancels a job whose needs are not done yet: it never starts, and what needs it is skipped', async () => {
    const o = orchestrator()
    const file = workflow(
      'chain.yml',
      'on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: sleep 1\n  deploy:\n    needs: build\n    runs-on: linux\n    steps:\n      - run: echo deployed\n  notify:\n    needs: deploy\n    runs-on: linux\n    steps:\n      - run: echo told\n',
    )
    const e = await o.trigger({ workflowFile: file })
    await until(
      () => o.runOf(e.id) !== null && o.runs.getRun(o.runOf(e.id)!).jobs[0]!.state === 'running',
      'build runs',
    )
    const runId = o.runOf(e.id)!
    o.cancelJob(runId, 'deploy')
    await o.idle()
    const jobs = o.runs.getRun(runId).jobs
    expect(jobs.map((j) => [j.key, j.state])).toEqual([
      ['build', 'succeeded'],
      ['deploy', 'cancelled'],
      ['notify', 'skipped'],
    ])
    expect(jobs[1]!.startedAt).toBeNull()
    expect(o.runs.getLogs(runId, 0, 100).map((l) => l.text)).not.toContain('deployed')
  })

  it('on stop, a run none of whose jobs got a slot is queued again; one that ran is cancelled', async () => {
    const o = orchestrator(shell(1))
    const file = (n: string) =>
      workflow(`${n}.yml`, `on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: sleep 30\n`)
    const first = await o.trigger({ workflowFile: file('first') })
    await until(
      () => o.runOf(first.id) !== null && o.runs.getRun(o.runOf(first.id)!).jobs[0]!.state === 'running',
      'first runs',
    )
    const second = await o.trigger({ workflowFile: file('second') })
    await until(() => o.queue().jobs.length === 1, 'second waits')
    await o.stop()
    const ran = o.runs.getRun(o.runOf(first.id)!)
    expect(ran.run.state).toBe('cancelled')
    expect(ran.jobs[0]!.reason).toBe('the console stopped')
    const waited = o.runs.getRun(o.runOf(second.id)!)
    expect(waited.run.state).toBe('cancelled')
    expect(waited.jobs[0]!.reason).toMatch(
      /^the console stopped before it started; queued again \(entry \d+\)$/,
    )
    expect(new QueueStore(db).waiting().map((w) => w.workflowFile)).toEqual([join(dir, 'second.yml')])
  })

  it('re-runs only the failed jobs and what needs them, taking the others from the earlier run', async () => {
    const flag = join(dir, 'fail-once')
    writeFileSync(flag, '')
    const o = orchestrator()
    const file = workflow(
      'flaky.yml',
      `on: push
jobs:
  build:
    runs-on: linux
    outputs: { v: '\${{ steps.b.outputs.v }}' }
    steps:
      - id: b
        run: echo "v=built-$RANDOM" >> "$GITHUB_OUTPUT"
  test:
    needs: build
    runs-on: linux
    steps:
      - run: if [ -e ${flag} ]; then rm ${flag}; exit 1; fi; echo "testing \${{ needs.build.outputs.v }}"
  ship:
    needs: test
    runs-on: linux
    steps:
      - run: echo shipped
`,
    )
    const first = await o.trigger({ workflowFile: file })
    await o.idle()
    const run1 = o.runOf(first.id)!
    expect(o.runs.getRun(run1).run.state).toBe('failed')
    const built = o.runs.getRun(run1).jobs.find((j) => j.key === 'build')!.outputs.v!
    const again = await o.rerun(run1, { kind: 'failed' })
    await o.idle()
    const run2 = o.runOf(again.id)!
    const detail = o.runs.getRun(run2)
    expect(detail.run.state).toBe('succeeded')
    expect(detail.jobs.map((j) => [j.key, j.state])).toEqual([
      ['build', 'succeeded'],
      ['test', 'succeeded'],
      ['ship', 'succeeded'],
    ])
    expect(detail.jobs[0]!.reason).toBe(`reused from run ${run1} (not run again)`)
    expect(detail.jobs[0]!.outputs.v).toBe(built)
    expect(o.runs.getLogs(run2, 0, 100).map((l) => l.text)).toContain(`testing ${built}`)
    await expect(o.rerun(run2, { kind: 'failed' })).rejects.toThrow(/no failed job/)
    await expect(o.rerun(run2, { kind: 'job', job: 'nope' })).rejects.toThrow(/has no job "nope"/)
    const one = await o.rerun(run2, { kind: 'job', job: 'ship' })
    await o.idle()
    expect(o.runs.getRun(o.runOf(one.id)!).jobs.map((j) => j.reason?.startsWith('reused') ?? false)).toEqual([
      true,
      true,
      false,
    ])
  })

  it('re-runs only the failed instances of a matrix job, as GitHub does; what needs it runs whole', async () => {
    const flag = join(dir, 'b-fails-once')
    writeFileSync(flag, '')
    const o = orchestrator(shell(3))
    const file = workflow(
      'legs.yml',
      `on: push
jobs:
  build:
    runs-on: linux
    strategy: { fail-fast: false, matrix: { leg: [a, b, c] } }
    steps:
      - run: echo "ran \${{ matrix.leg }}"; if [ \${{ matrix.leg }} = b ] && [ -e ${flag} ]; then rm ${flag}; exit 1; fi
  after:
    needs: build
    runs-on: linux
    steps:
      - run: echo after
`,
    )
    const first = await o.trigger({ workflowFile: file })
    await o.idle()
    const run1 = o.runOf(first.id)!
    expect(o.runs.getRun(run1).jobs.map((j) => [j.key, j.state])).toEqual([
      ['build (a)', 'succeeded'],
      ['after', 'skipped'],
      ['build (b)', 'failed'],
      ['build (c)', 'succeeded'],
    ])
    const again = await o.rerun(run1, { kind: 'failed' })
    await o.idle()
    const run2 = o.runOf(again.id)!
    const detail = o.runs.getRun(run2)
    expect(detail.run.state).toBe('succeeded')
    const byKey = new Map(detail.jobs.map((j) => [j.key, j]))
    expect(byKey.get('build (a)')!.reason).toBe(`reused from run ${run1} (not run again)`)
    expect(byKey.get('build (c)')!.reason).toBe(`reused from run ${run1} (not run again)`)
    expect(byKey.get('build (b)')!.reason).toBeNull()
    const lines = o.runs.getLogs(run2, 0, 100).map((l) => l.text)
    expect(lines.filter((t) => t.startsWith('ran '))).toEqual(['ran b'])
    expect(lines).toContain('after')
    // Re-run all: every instance runs.
    const all = await o.rerun(run2, { kind: 'all' })
    await o.idle()
    const allLines = o.runs.getLogs(o.runOf(all.id)!, 0, 100).map((l) => l.text)
    expect(allLines.filter((t) => t.startsWith('ran ')).sort()).toEqual(['ran a', 'ran b', 'ran c'])
  })

  it('re-runs one job and what needs it, keeping every other result as it was (failed ones too)', async () => {
    const o = orchestrator()
    const file = workflow(
      'two-fail.yml',
      'on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: exit 1\n  b:\n    runs-on: linux\n    steps:\n      - run: echo b-ran\n  c:\n    runs-on: linux\n    steps:\n      - run: exit 2\n',
    )
    const first = await o.trigger({ workflowFile: file })
    await o.idle()
    const run1 = o.runOf(first.id)!
    const again = await o.rerun(run1, { kind: 'job', job: 'b' })
    await o.idle()
    const run2 = o.runs.getRun(o.runOf(again.id)!)
    expect(run2.jobs.map((j) => [j.key, j.state, j.reason?.startsWith('reused') ?? false])).toEqual([
      ['a', 'failed', true],
      ['b', 'succeeded', false],
      ['c', 'failed', true],
    ])
    expect(run2.run.state).toBe('failed')
    expect(o.runs.getLogs(run2.run.id, 0, 100).map((l) => l.text)).toContain('b-ran')
  })

  it('serves a hotfix before older normal runs when the slot frees', async () => {
    const o = orchestrator(shell(1))
    const file = (n: string) =>
      workflow(`${n}.yml`, `on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: sleep 0.3\n`)
    const busy = await o.trigger({ workflowFile: file('busy') })
    await until(
      () => o.runOf(busy.id) !== null && o.runs.getRun(o.runOf(busy.id)!).jobs[0]!.state === 'running',
      'busy runs',
    )
    const normal = await o.trigger({ workflowFile: file('normal') })
    await until(() => o.queue().jobs.length === 1, 'normal waits')
    const fix = await o.trigger({ workflowFile: file('fix'), priority: 'hotfix' })
    await until(() => o.queue().jobs.length === 2, 'fix waits')
    expect(o.queue().jobs.map((j) => [j.priority, j.position])).toEqual([
      ['hotfix', 1],
      ['normal', 2],
    ])
    await o.idle()
    const started = (id: number) => o.runs.getRun(o.runOf(id)!).jobs[0]!.startedAt!
    expect(started(fix.id)).toBeLessThan(started(normal.id))
  })

  it('with preemption on, a hotfix stops a running low job, which is requeued (not failed) and later completes', async () => {
    const o = orchestrator(shell(1), { preemption: true })
    const file = (n: string, secs: number) =>
      workflow(
        `${n}.yml`,
        `on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: echo start-${n}; sleep ${secs}; echo end-${n}\n`,
      )
    const low = await o.trigger({ workflowFile: file('low', 2), priority: 'low' })
    await until(
      () =>
        o.runOf(low.id) !== null &&
        o.runs.getLogs(o.runOf(low.id)!, 0, 100).some((l) => l.text === 'start-low'),
      'low runs',
    )
    const fix = await o.trigger({ workflowFile: file('fix', 0), priority: 'hotfix' })
    await o.idle()
    const lowRun = o.runs.getRun(o.runOf(low.id)!)
    const fixRun = o.runs.getRun(o.runOf(fix.id)!)
    expect([lowRun.run.state, fixRun.run.state]).toEqual(['succeeded', 'succeeded'])
    // The low job ran twice: before the hotfix (stopped), and after it (whole).
    const lowLines = o.runs.getLogs(lowRun.run.id, 0, 100).map((l) => l.text)
    expect(lowLines.filter((t) => t === 'start-low')).toHaveLength(2)
    expect(lowLines.filter((t) => t === 'end-low')).toHaveLength(1)
    expect(lowRun.jobs[0]!.startedAt!).toBeGreaterThanOrEqual(fixRun.jobs[0]!.finishedAt!)
    // Recorded as preempted in its log; never failed.
    expect(lowLines).toContain(
      `preempted by hotfix job j (run ${fixRun.run.id}); it runs again when a slot frees`,
    )
    expect(lowRun.jobs[0]!.state).toBe('succeeded')
    // Two attempts: the preempted one, then the whole one; the hotfix's one.
    expect(lowRun.jobs[0]!.attempts.map((a) => [a.number, a.nodeName, a.state, a.reason])).toEqual([
      [
        1,
        'here',
        'preempted',
        `preempted by hotfix job j (run ${fixRun.run.id}); it runs again when a slot frees`,
      ],
      [2, 'here', 'succeeded', null],
    ])
    expect(lowRun.jobs[0]!.attempts[1]!.startedAt).toBeGreaterThanOrEqual(
      lowRun.jobs[0]!.attempts[0]!.finishedAt!,
    )
    expect(fixRun.jobs[0]!.attempts.map((a) => a.state)).toEqual(['succeeded'])
    // Without preemption the hotfix waits for the slot instead.
    const calm = orchestrator(shell(1))
    const a = await calm.trigger({ workflowFile: file('a', 1), priority: 'low' })
    await until(
      () =>
        calm.runOf(a.id) !== null &&
        calm.runs.getLogs(calm.runOf(a.id)!, 0, 100).some((l) => l.text === 'start-a'),
      'a runs',
    )
    const b = await calm.trigger({ workflowFile: file('b', 0), priority: 'hotfix' })
    await calm.idle()
    const aLines = calm.runs.getLogs(calm.runOf(a.id)!, 0, 100).map((l) => l.text)
    expect(aLines.filter((t) => t === 'start-a')).toHaveLength(1)
    expect(calm.runs.getRun(calm.runOf(b.id)!).run.state).toBe('succeeded')
  })

  it('loses nothing queued when its orchestrator died: the next one takes the entry', async () => {
    const file = workflow(
      'later.yml',
      'on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: echo picked up\n',
    )
    const queue = new QueueStore(db)
    const entry = queue.add(file, {}, 'normal', Date.now())
    queue.take(entry.id, 'an-orchestrator-that-died')
    const o = orchestrator()
    await until(() => o.runOf(entry.id) !== null, 'the entry is taken')
    await o.idle()
    expect(o.runs.getRun(o.runOf(entry.id)!).run.state).toBe('succeeded')
  })

  it("fences a lost attempt's leftovers on its node without waiting for the node's next job", async () => {
    const file = workflow(
      'once.yml',
      'on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: echo once\n',
    )
    let sweeps = 0
    const farm = farmOf([shell()])
    const sessions = new NodeSessions(farm)
    const o = new Orchestrator({
      db,
      farm: () => farm,
      sessions: () => sessions,
      pollMs: 20,
      fenceSweepMs: 40,
      fenced: () => sweeps++,
    }).start()
    orchestrators.push(o)
    const entry = await o.trigger({ workflowFile: file })
    await o.idle()
    // As a dead orchestrator's attempt would have left it: a workspace whose step still runs.
    const base = join(dir, 'left-behind')
    mkdirSync(join(base, 'temp/_steps/1'), { recursive: true })
    const orphan = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' })
    writeFileSync(join(base, 'temp/_steps/1/pid'), String(orphan.pid))
    const exited = new Promise((r) => orphan.once('exit', r))
    const attempt = db
      .prepare('SELECT a.id FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.run_id = ?')
      .get(o.runOf(entry.id)!) as { id: number }
    o.runs.setAttemptRef(attempt.id, base)
    o.runs.markFence(attempt.id)
    const before = sweeps
    await until(() => sweeps > before + 1, 'a sweep after the mark')
    await exited
    expect(existsSync(base)).toBe(false)
    expect(o.runs.fencesOn('here')).toEqual([])
  })

  it('takes over the run of a console that died: the same run goes on, finished jobs kept, a running one tried again when its attempt cannot be taken over', async () => {
    const file = workflow(
      'two.yml',
      'on: push\njobs:\n  a:\n    runs-on: linux\n    outputs:\n      v: ${{ steps.s.outputs.v }}\n    steps:\n      - id: s\n        run: echo "v=1" >> "$GITHUB_OUTPUT"\n' +
        '  b:\n    needs: a\n    runs-on: linux\n    steps:\n      - run: echo "b got ${{ needs.a.outputs.v }}"\n',
    )
    // As a console killed with job b running leaves the history: its process is gone.
    const gone = spawn('true')
    await new Promise((r) => gone.once('exit', r))
    const holder = 'dead-console'
    new ClaimStore(db).register({
      id: holder,
      kind: 'console',
      host: hostname(),
      pid: gone.pid!,
      startedAt: 1,
      leaseUntil: Date.now() + 60_000,
    })
    const runs = new RunStore(db)
    const created = runs.createRun({
      holder,
      workflowName: 'two',
      workflowFile: file,
      farmFile: null,
      jobs: [
        { key: 'a', name: 'a', needs: [], runsOn: ['linux'], steps: ['s'] },
        { key: 'b', name: 'b', needs: ['a'], runsOn: ['linux'], steps: ['Run echo'] },
      ],
    })
    const [a, b] = [created.jobIds.get('a')!, created.jobIds.get('b')!]
    runs.setRunState(created.runId, 'running')
    const first = runs.startAttempt({ jobId: a, node: 'here', claimId: 1, holder, at: 1 })
    runs.updateJob(a, { state: 'running' })
    runs.updateJob(a, { state: 'succeeded', outputs: { v: '1' } })
    runs.endAttempt(first.id, 'succeeded', null)
    runs.startAttempt({ jobId: b, node: 'here', claimId: 2, holder, at: 2 })
    runs.updateJob(b, { state: 'running' })
    const queue = new QueueStore(db)
    queue.started(queue.add(file, {}, 'normal', 1).id, created.runId)

    const o = orchestrator()
    await until(() => runs.getRun(created.runId).run.state !== 'running', 'the run finished')
    await o.idle()
    expect(runs.listRuns(5)).toHaveLength(1)
    const done = runs.getRun(created.runId)
    expect(done.run.state).toBe('succeeded')
    const [ja, jb] = done.jobs
    // a is kept as it was; b's attempt could not be taken over here (a shell node's step ends
    // with its orchestrator), so it ran again, in the same run, with a's outputs.
    expect(ja!.attempts.map((x) => x.state)).toEqual(['succeeded'])
    expect(jb!.attempts.map((x) => [x.number, x.state])).toEqual([
      [1, 'lost'],
      [2, 'succeeded'],
    ])
    const lines = runs.getLogs(created.runId).map((l) => l.text)
    expect(lines).toContain('b got 1')
    expect(lines).toContain(
      'the orchestrator that ran it stopped, and what it ran on here could not be taken over',
    )
  })

  it('says in the queue why a run could not start', async () => {
    const o = orchestrator()
    const file = workflow(
      'gpu.yml',
      'on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: echo\n',
    )
    const entry = await o.trigger({ workflowFile: file, labels: ['gpu'] })
    await o.idle()
    expect(o.queue().failed).toEqual([
      expect.objectContaining({ queueId: entry.id, error: expect.stringMatching(/cannot run on this farm/) }),
    ])
    expect(() => o.setPriority(entry.id, 'high')).toThrow(/not waiting/)
    // Removing it dismisses it from the list.
    o.dequeue(entry.id)
    expect(o.queue().failed).toEqual([])
  })
})
