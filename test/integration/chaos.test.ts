/**
 * Chaos on the lab (issue 11): many jobs at once, a cancel storm, and the console killed with 20
 * jobs running (the next one takes them over). Every case checks the same things: no job lost, none completed twice, every
 * numbered line of a job's finishing attempt stored once and in order, and no container of the
 * history's left on any host afterwards. A node's slots are never exceeded.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import type { JobView } from '../../src/shared/model'
import { cli, spawnCli, tempDir } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'
import { serve } from '../support/serve'
import { until } from '../support/until'

const LINES = 20

/** The lab's farm with the given slots per host, every host labelled `chaos`. */
function chaosFarm(dir: string, slots: Record<string, number>): string {
  let text = readFileSync(lab().farmFile, 'utf8').replace(
    /labels: \[linux, (\w+)\]/g,
    'labels: [linux, $1, chaos]',
  )
  for (const [name, n] of Object.entries(slots))
    text = text.replace(new RegExp(`(- name: ${name}\\n(?:    .*\\n)*?    slots: )\\d+`), `$1${n}`)
  const file = join(dir, 'farm.yml')
  writeFileSync(file, text)
  return file
}

/** A matrix of `jobs` instances, each printing LINES numbered lines, `pause` seconds apart. */
function chaosWorkflow(dir: string, jobs: number, pause: number): string {
  const file = join(dir, 'chaos.yml')
  const ns = Array.from({ length: jobs }, (_, i) => i + 1).join(', ')
  writeFileSync(
    file,
    `name: chaos
on: [push, workflow_dispatch]
jobs:
  c:
    runs-on: chaos
    container: lab/busybox:1
    strategy:
      matrix:
        n: [${ns}]
    steps:
      - run: i=1; while [ $i -le ${LINES} ]; do echo "c$N line $i"; i=$((i+1)); sleep ${pause}; done
        env:
          N: \${{ matrix.n }}
`,
  )
  return file
}

/** How long a chaos case may take to reach each state: 20 to 50 containers share two cores. */
const PATIENCE = 120_000

/** Jobs of the newest run now running. */
function runningNow(dir: string): number {
  return withHistory(dir, (runs) => {
    const run = runs.listRuns(1)[0]
    return run ? runs.getRun(run.id).jobs.filter((j) => j.state === 'running').length : 0
  })
}

/** Jobs of the newest run that are running and have stored a line of their own output. */
function printingNow(dir: string): number {
  return withHistory(dir, (runs) => {
    const run = runs.listRuns(1)[0]
    if (!run) return 0
    const d = runs.getRun(run.id)
    const printed = new Set(
      runs
        .getLogs(run.id, 0, 1_000_000)
        .filter((l) => l.stream === 'stdout')
        .map((l) => l.jobKey),
    )
    return d.jobs.filter((j) => j.state === 'running' && printed.has(j.key)).length
  })
}

/** Jobs of run 1 whose log says they were taken over by the next console. */
function takenOver(dir: string): number {
  return withHistory(dir, (runs) => {
    const lines = runs
      .getLogs(1, 0, 1_000_000)
      .filter((l) => l.stream === 'system' && l.text.startsWith('taken over'))
    return new Set(lines.map((l) => l.jobKey)).size
  })
}

function withHistory<T>(dir: string, use: (runs: RunStore) => T): T {
  const db = openDatabase(dir)
  try {
    return use(new RunStore(db))
  } finally {
    db.close()
  }
}

/** Every container on the lab's hosts that this history's orchestrators made. */
async function containersOf(instance: string): Promise<string[]> {
  const found: string[] = []
  for (const h of lab().hosts) {
    const list = await hostEngine(h.name).listContainers({
      all: true,
      filters: { label: [`io.yardmaster.instance=${instance}`] },
    })
    found.push(...list.map((c) => `${h.name}: ${c.Names[0]} (${c.State})`))
  }
  return found
}

/** The finished run's jobs all succeeded, each with one succeeded attempt whose lines are all there once, in order. */
function expectComplete(runs: RunStore, runId: number, jobs: number): void {
  const detail = runs.getRun(runId)
  expect(detail.run.state).toBe('succeeded')
  expect(detail.jobs).toHaveLength(jobs)
  const lines = runs.getLogs(runId, 0, 1_000_000).filter((l) => l.stream === 'stdout')
  for (const job of detail.jobs) {
    const won = job.attempts.filter((a) => a.state === 'succeeded')
    expect(won, `${job.key}: one attempt completes`).toHaveLength(1)
    const n = /\((\d+)\)$/.exec(job.key)![1]
    const mine = lines.filter((l) => l.jobKey === job.key && l.attempt === won[0]!.number).map((l) => l.text)
    expect(mine, `${job.key}: every line once, in order`).toEqual(
      Array.from({ length: LINES }, (_, i) => `c${n} line ${i + 1}`),
    )
  }
}

/** The most attempts that ran on one node at once, per node. */
function peakPerNode(jobs: JobView[]): Record<string, number> {
  const edges: Array<[string, number, number]> = []
  for (const j of jobs)
    for (const a of j.attempts) {
      edges.push([a.nodeName, a.startedAt, 1])
      edges.push([a.nodeName, a.finishedAt ?? Number.MAX_SAFE_INTEGER, -1])
    }
  // Ends before starts at the same instant: a slot freed and taken in one millisecond is not two.
  edges.sort((a, b) => a[1] - b[1] || a[2] - b[2])
  const now: Record<string, number> = {}
  const peak: Record<string, number> = {}
  for (const [node, , d] of edges) {
    now[node] = (now[node] ?? 0) + d
    peak[node] = Math.max(peak[node] ?? 0, now[node])
  }
  return peak
}

describe('chaos on the lab', () => {
  it('a console stopped with --on-quit leave leaves its jobs running; the next one takes them over', async () => {
    const dir = tempDir()
    const farm = chaosFarm(dir, { n1: 2, n2: 2, n3: 2 })
    const first = await serve(['--data-dir', dir, '--farm', farm, '--on-quit', 'leave'])
    const follower = spawnCli(['run', chaosWorkflow(dir, 3, 0.5), '--data-dir', dir])
    await until(() => printingNow(dir) === 3, '3 jobs printing', PATIENCE)
    const instance = withHistory(dir, (runs) => runs.instanceId())
    await first.stop()
    expect(await first.exited).toBe(0)
    expect(first.output()).toContain(
      `left 3 jobs running on their nodes: the next console on ${dir} takes them over`,
    )
    follower.child.kill('SIGKILL')
    // Nothing was cancelled: the run is still running, its containers too.
    withHistory(dir, (runs) => expect(runs.getRun(1).run.state).toBe('running'))
    expect((await containersOf(instance)).length).toBe(3)

    const second = await serve(['--data-dir', dir, '--farm', farm])
    try {
      await until(
        () => withHistory(dir, (runs) => runs.getRun(1).run.state !== 'running'),
        'the run finishes',
        PATIENCE,
      )
      withHistory(dir, (runs) => {
        expectComplete(runs, 1, 3)
        for (const job of runs.getRun(1).jobs) expect(job.attempts.map((a) => a.number)).toEqual([1])
      })
      expect(await containersOf(instance)).toEqual([])
    } finally {
      await second.stop()
    }
  }, 300_000)

  it('50 jobs submitted at once over 3 hosts: all complete once, every line kept, slots never exceeded', async () => {
    const dir = tempDir()
    const slots = { n1: 4, n2: 3, n3: 3 }
    const farm = chaosFarm(dir, slots)
    const served = await serve(['--data-dir', dir, '--farm', farm])
    try {
      const res = await cli(['run', chaosWorkflow(dir, 50, 0.05), '--data-dir', dir])
      expect(res.code, res.out + res.err).toBe(0)
      withHistory(dir, (runs) => {
        expectComplete(runs, 1, 50)
        const peak = peakPerNode(runs.getRun(1).jobs)
        for (const [node, n] of Object.entries(peak)) expect(n).toBeLessThanOrEqual(slots[node as 'n1'])
        // The work was spread: every host took some.
        expect(Object.keys(peak).sort()).toEqual(['n1', 'n2', 'n3'])
      })
      const instance = withHistory(dir, (runs) => runs.instanceId())
      expect(await containersOf(instance)).toEqual([])
    } finally {
      await served.stop()
    }
  }, 300_000)

  it('a cancel storm: 30 running jobs cancelled at once all end cancelled, and nothing of theirs is left on any host', async () => {
    const dir = tempDir()
    const farm = chaosFarm(dir, { n1: 10, n2: 10, n3: 10 })
    const served = await serve(['--data-dir', dir, '--farm', farm])
    try {
      const follower = spawnCli(['run', chaosWorkflow(dir, 30, 1), '--data-dir', dir])
      await until(() => runningNow(dir) === 30, '30 jobs running', PATIENCE)
      // Each job cancelled by its own request, all at once.
      const keys = withHistory(dir, (runs) => runs.getRun(1).jobs.map((j) => j.key))
      const asked = Date.now()
      const answers = await Promise.all(keys.map((k) => cli(['cancel', `1/${k}`, '--data-dir', dir])))
      expect(answers.map((a) => a.code)).toEqual(keys.map(() => 0))
      await until(
        () =>
          withHistory(dir, (runs) => {
            const d = runs.getRun(1)
            return d.run.state !== 'running' && d.jobs.every((j) => j.state !== 'running')
          }),
        'every job ended',
        PATIENCE,
      )
      const took = Date.now() - asked
      withHistory(dir, (runs) => {
        const d = runs.getRun(1)
        expect(d.jobs.map((j) => j.state)).toEqual(keys.map(() => 'cancelled'))
        expect(d.run.state).toBe('cancelled')
      })
      // A figure for the closing note, not an assertion: it depends on the machine's load.
      console.log(`cancel storm: 30 jobs cancelled in ${took} ms`)
      const instance = withHistory(dir, (runs) => runs.instanceId())
      await until(async () => (await containersOf(instance)).length === 0, 'no container left', 30_000)
      expect((await follower.done).code).not.toBe(0)
    } finally {
      await served.stop()
    }
  }, 300_000)

  it('the console killed with 20 jobs running: the next one takes them all over, and the run completes once, every line kept', async () => {
    const dir = tempDir()
    const farm = chaosFarm(dir, { n1: 7, n2: 7, n3: 6 })
    const first = spawn(
      process.execPath,
      [join(REPO, 'bin', 'yardmaster.cjs'), 'serve', '--port', '0', '--data-dir', dir, '--farm', farm],
      { stdio: 'ignore' },
    )
    let instance = ''
    try {
      await until(
        async () => (await cli(['queue', '--data-dir', dir])).code === 0,
        'the console answers',
        PATIENCE,
      )
      const follower = spawnCli(['run', chaosWorkflow(dir, 20, 1), '--data-dir', dir])
      // A job is running once its first line is stored: its state says so before its container exists.
      await until(() => printingNow(dir) === 20, '20 jobs printing', PATIENCE)
      instance = withHistory(dir, (runs) => runs.instanceId())
      first.kill('SIGKILL')
      await new Promise((r) => first.once('exit', r))
      follower.child.kill('SIGKILL')
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL')
    }
    // Its containers outlive it, still printing.
    expect((await containersOf(instance)).length).toBe(20)

    const restarted = Date.now()
    const second = await serve(['--data-dir', dir, '--farm', farm])
    try {
      await until(() => takenOver(dir) === 20, 'every running job taken over', PATIENCE)
      // A figure for the closing note (target: under 10 s with 20 jobs), not an assertion: it
      // depends on the machine's load.
      console.log(`recovery: 20 running jobs taken over ${Date.now() - restarted} ms after the restart`)
      await until(
        () => withHistory(dir, (runs) => runs.getRun(1).run.state !== 'running'),
        'the run finishes',
        240_000,
      )
      withHistory(dir, (runs) => {
        // The same run, not a new one: each job's first attempt went on and completed, once.
        expect(runs.listRuns(5)).toHaveLength(1)
        expectComplete(runs, 1, 20)
        for (const job of runs.getRun(1).jobs) expect(job.attempts.map((a) => a.number)).toEqual([1])
      })
      expect(await containersOf(instance)).toEqual([])
    } finally {
      await second.stop()
    }
  }, 400_000)
})
