/**
 * The console's orchestrator and its clients on the lab: `yardmaster run` submits to a running
 * `serve` and follows the run; `queue`, `cancel`, `logs` and `rerun` from a terminal; and a
 * `kill -9` of the console loses nothing that was queued, and leaves nothing "running", nor
 * any container of its behind.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, spawnCli, tempDir } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'
import { serve } from '../support/serve'
import { until } from '../support/until'

/** Two jobs on n3, the lab's one arm64 host with one slot: one waits while the other runs. */
const soak = (dir: string, seconds: number) => {
  const file = join(dir, 'soak.yml')
  writeFileSync(
    file,
    `name: soak
on: [push, workflow_dispatch]
jobs:
  long:
    runs-on: [self-hosted, arm64]
    container: lab/busybox:1
    steps:
      - run: echo soaking; sleep ${seconds}; echo soaked
  quick:
    needs: []
    runs-on: [self-hosted, arm64]
    container: lab/busybox:1
    steps:
      - run: echo quick one
`,
  )
  return file
}

const history = (dir: string) => {
  const db = openDatabase(dir)
  return { runs: new RunStore(db), close: () => db.close() }
}

describe("the console's orchestrator and its terminal clients", () => {
  it('run submits to a running console and follows it; queue says why a job waits; cancel, logs and rerun work from a terminal', async () => {
    const dir = tempDir()
    const served = await serve(['--data-dir', dir, '--farm', lab().farmFile])
    try {
      const wf = soak(dir, 20)
      const run = spawnCli(['run', wf, '--data-dir', dir, '--json', '--priority', 'high'])
      await run.saw("submitting to the console's orchestrator")
      await run.saw('soaking')

      // The other job waits for n3's only slot; the queue says so, from the history.
      const q = await cli(['queue', '--json', '--data-dir', dir])
      const queue = JSON.parse(q.out) as {
        jobs: Array<{ runId: number; key: string; priority: string; reason: string }>
      }
      expect(queue.jobs).toEqual([
        expect.objectContaining({
          runId: 1,
          key: 'quick',
          priority: 'high',
          reason: '1 node fits; it is busy',
        }),
      ])
      expect((await cli(['queue', '--data-dir', dir])).out).toMatch(
        /Waiting jobs:\n#\s+RUN\s+JOB.*\n1\s+1\s+quick\s+high/,
      )

      // Cancel the long job from another terminal: the waiting one then runs.
      const c = await cli(['cancel', '1/long', '--data-dir', dir])
      expect(c.err).toBe('run 1 job long: cancel requested\n')
      const done = await run.done
      expect(done.code).toBe(1)
      expect(done.out).toMatch(
        /\[long\]\s+· job cancelled: cancelled from the terminal \(yardmaster cancel\)/,
      )
      expect(done.out).toMatch(/\[quick\]\s+quick one/)
      expect(done.out).toMatch(/\[quick\]\s+· step 1: Run echo quick one/)
      const report = JSON.parse(done.out.split('\n').find((l) => l.startsWith('{"runId"'))!) as {
        conclusion: string
        jobs: Record<string, { conclusion: string }>
      }
      expect(report.conclusion).toBe('cancelled')
      expect(report.jobs.quick!.conclusion).toBe('success')

      // The stored log, as gh run view --log prints one.
      const logs = await cli(['logs', '1', '--job', 'quick', '--data-dir', dir])
      expect(logs.out).toMatch(/^quick\tRun echo quick one\t\d{4}-\d\d-\d\dT[\d:.]+Z quick one$/m)
      expect((await cli(['logs', '9', '--data-dir', dir])).err).toMatch(/there is no run 9 in this history/)

      // Re-run the failed (cancelled) job through the console, quickly this time.
      soak(dir, 0)
      const rerun = await cli(['rerun', '1', '--failed', '--data-dir', dir])
      expect(rerun.err).toMatch(/submitting to the console's orchestrator/)
      expect(rerun.err).toMatch(/run 2 succeeded/)
      expect(rerun.code).toBe(0)
      const h = history(dir)
      try {
        const jobs = h.runs.getRun(2).jobs
        expect(jobs.find((j) => j.key === 'quick')!.reason).toBe('reused from run 1 (not run again)')
        expect(jobs.find((j) => j.key === 'long')!.state).toBe('succeeded')
      } finally {
        h.close()
      }
      expect((await cli(['cancel', '2', '--data-dir', dir])).err).toBe(
        'run 2 has already ended (succeeded); nothing to cancel\n',
      )
    } finally {
      await served.stop()
    }
  }, 180_000)

  it('kill -9 of the console loses nothing: the next one takes the run over, its running job on its node', async () => {
    const dir = tempDir()
    const wf = soak(dir, 4)
    const first = spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'yardmaster.cjs'),
        'serve',
        '--port',
        '0',
        '--data-dir',
        dir,
        '--farm',
        lab().farmFile,
      ],
      {
        stdio: 'ignore',
      },
    )
    try {
      await until(
        async () => (await cli(['queue', '--data-dir', dir])).code === 0 && consoleUp(dir),
        'the console registers',
      )
      // Through the console's API path: a trigger is a queue entry the console takes.
      const submitted = spawnCli(['run', wf, '--data-dir', dir])
      await submitted.saw('soaking')
      first.kill('SIGKILL')
      await new Promise((r) => first.once('exit', r))
      submitted.child.kill('SIGKILL')
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL')
    }
    const second = await serve(['--data-dir', dir, '--farm', lab().farmFile])
    try {
      const h = history(dir)
      try {
        await until(() => h.runs.getRun(1).run.state === 'succeeded', 'the run is taken over and completes')
        // The same run, not a new one: its running job went on in its container and was taken
        // over there, its first attempt completing; what had not run yet ran.
        expect(h.runs.listRuns(5)).toHaveLength(1)
        const run = h.runs.getRun(1)
        expect(run.jobs.map((j) => [j.key, j.state])).toEqual([
          ['long', 'succeeded'],
          ['quick', 'succeeded'],
        ])
        const long = run.jobs.find((j) => j.key === 'long')!
        expect(long.attempts.map((a) => [a.number, a.state])).toEqual([[1, 'succeeded']])
        const lines = h.runs.getLogs(1).filter((l) => l.jobKey === 'long' && l.stream === 'stdout')
        expect(lines.map((l) => l.text)).toEqual(['soaking', 'soaked'])
        // Nothing of it is left on the host.
        const engine = hostEngine('n3')
        const left = await engine.listContainers({
          all: true,
          filters: { label: [`io.yardmaster.instance=${h.runs.instanceId()}`, 'io.yardmaster.run=1'] },
        })
        expect(left).toEqual([])
        expect(h.runs.fencesOn('n3')).toEqual([])
      } finally {
        h.close()
      }
    } finally {
      await second.stop()
    }
  }, 180_000)
})

function consoleUp(dir: string): boolean {
  const db = openDatabase(dir)
  try {
    return (
      (db.prepare("SELECT count(*) AS n FROM orchestrators WHERE kind = 'console'").get() as { n: number })
        .n > 0
    )
  } finally {
    db.close()
  }
}
