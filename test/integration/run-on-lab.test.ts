/**
 * The walking skeleton end to end on the lab: real sshd, real dockerd, real SQLite.
 * What ran where is checked on the hosts' own engines, not only in our records.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir } from '../support/cli'
import { hostEngine, lab, REPO, runEvents } from '../support/lab'

const fixture = (name: string) => join(REPO, 'test', 'fixtures', 'lab', name)

describe('yardmaster run on the lab', () => {
  let dataDir: string
  let farm: string
  beforeAll(() => {
    farm = lab().farmFile
    dataDir = tempDir()
  })

  const history = () => {
    const db = openDatabase(dataDir)
    return { store: new RunStore(db), close: () => db.close() }
  }

  it('runs job b after job a, each on the only host with its labels, and records everything', async () => {
    const started = Date.now()
    const res = await cli(['run', fixture('two-hosts.yml'), '--farm', farm, '--data-dir', dataDir])
    expect(res.err).toMatch(/run \d+ succeeded/)
    expect(res.code).toBe(0)

    // Output: prefixed by job, in order within each job, b's output after a finished.
    const lines = res.out.split('\n')
    const aLine = lines.findIndex((l) => l.startsWith('[a]') && l.includes('a sees wf job-a on'))
    const bLine = lines.findIndex((l) => l.startsWith('[b]') && l.includes('b runs after a'))
    const aDone = lines.findIndex((l) => l.startsWith('[a]') && l.includes('job succeeded'))
    expect(aLine).toBeGreaterThanOrEqual(0)
    expect(bLine).toBeGreaterThan(aDone)
    expect(res.out).toMatch(/\[a\]\s+GNU bash, version 5/)
    expect(res.out).toMatch(/\[a\]\s+git version 2/)
    expect(res.out).toMatch(/\[b\]\s+to stderr/)

    // Records.
    const h = history()
    try {
      const [run] = h.store.listRuns(1)
      const instance = h.store.instanceId()
      expect(run).toMatchObject({ state: 'succeeded', workflowName: 'two hosts', jobCount: 2 })
      const detail = h.store.getRun(run!.id)
      const a = detail.jobs.find((j) => j.key === 'a')!
      const b = detail.jobs.find((j) => j.key === 'b')!
      expect(a).toMatchObject({
        state: 'succeeded',
        nodeName: 'n2',
        image: 'lab/debian:bookworm',
        exitCode: 0,
      })
      expect(b).toMatchObject({ state: 'succeeded', nodeName: 'n3', image: 'lab/busybox:1', needs: ['a'] })
      expect(a.steps.map((s) => [s.name, s.state, s.exitCode])).toEqual([
        ['where am I', 'succeeded', 0],
        ['has bash and git', 'succeeded', 0],
      ])
      expect(b.finishedAt!).toBeGreaterThanOrEqual(b.startedAt!)
      expect(b.startedAt!).toBeGreaterThanOrEqual(a.finishedAt!)
      const logs = h.store.getLogs(run!.id)
      const texts = logs.map((l) => `${l.jobKey}:${l.stepIndex}:${l.stream}:${l.text}`)
      expect(texts).toContain('b:1:stderr:to stderr')
      expect(texts.some((t) => /^a:0:stdout:a sees wf job-a on [0-9a-f]{12}$/.test(t))).toBe(true)
      expect(logs.map((l) => l.seq)).toEqual([...logs.map((l) => l.seq)].sort((x, y) => x - y))

      // On the hosts: a's container lived on n2 and was gone before b's was created on n3; n1 saw nothing.
      const onN2 = await runEvents('n2', { instance, runId: run!.id }, started)
      const onN3 = await runEvents('n3', { instance, runId: run!.id }, started)
      const onN1 = await runEvents('n1', { instance, runId: run!.id }, started)
      expect(onN1).toEqual([])
      expect(onN2.filter((e) => e.action === 'create').map((e) => e.job)).toEqual(['a'])
      expect(onN3.filter((e) => e.action === 'create').map((e) => e.job)).toEqual(['b'])
      const aDestroyed = onN2.find((e) => e.action === 'destroy')!.time
      const bCreated = onN3.find((e) => e.action === 'create')!.time
      expect(bCreated).toBeGreaterThan(aDestroyed)
      // Nothing left behind.
      for (const n of ['n2', 'n3']) {
        const left = await hostEngine(n).listContainers({
          all: true,
          filters: { label: [`io.yardmaster.instance=${instance}`, `io.yardmaster.run=${run!.id}`] },
        })
        expect(left).toEqual([])
      }
    } finally {
      h.close()
    }
  })

  it('fails the job and the run on a failing step, skips the rest, and never starts the dependent job', async () => {
    const started = Date.now()
    const res = await cli(['run', fixture('fails-first.yml'), '--farm', farm, '--data-dir', dataDir])
    expect(res.code).toBe(1)
    expect(res.out).toContain('about to fail')
    expect(res.out).not.toContain('never printed')
    expect(res.out).not.toContain('must not run')
    expect(res.out).toMatch(/\[b\]\s+· job skipped: needs job "a", which failed/)

    const h = history()
    try {
      const [run] = h.store.listRuns(1)
      const instance = h.store.instanceId()
      expect(run!.state).toBe('failed')
      const { jobs } = h.store.getRun(run!.id)
      const a = jobs.find((j) => j.key === 'a')!
      const b = jobs.find((j) => j.key === 'b')!
      expect(a).toMatchObject({ state: 'failed', exitCode: 3, nodeName: 'n2' })
      expect(a.reason).toContain('exited with code 3')
      expect(a.steps.map((s) => [s.state, s.exitCode])).toEqual([
        ['failed', 3],
        ['skipped', null],
      ])
      expect(b).toMatchObject({ state: 'skipped', nodeName: null, startedAt: null })
      expect(b.steps.every((s) => s.state === 'skipped')).toBe(true)
      // n3 never saw a container of this run.
      expect(await runEvents('n3', { instance, runId: run!.id }, started)).toEqual([])
      expect(
        (await runEvents('n2', { instance, runId: run!.id }, started)).filter((e) => e.action === 'create'),
      ).toHaveLength(1)
    } finally {
      h.close()
    }
  })

  it('cancels on Ctrl-C: kills the running step, removes its container, cancels waiting jobs', async () => {
    const cancelDir = tempDir()
    const db = openDatabase(cancelDir)
    const instance = new RunStore(db).instanceId()
    db.close()
    const engine = hostEngine('n2')
    const abort = new AbortController()
    const started = Date.now()
    const running = cli(
      ['run', fixture('long-step.yml'), '--farm', farm, '--data-dir', cancelDir],
      abort.signal,
    )
    // Wait until the job's container runs on n2, then give the step a moment to start.
    await expect
      .poll(() => engine.listContainers({ filters: { label: [`io.yardmaster.instance=${instance}`] } }), {
        timeout: 15_000,
      })
      .toHaveLength(1)
    await new Promise((r) => setTimeout(r, 500))
    abort.abort()
    const res = await running
    expect(res.code).toBe(1)
    // Killed, not waited for: the step alone would have taken 60 s.
    expect(Date.now() - started).toBeLessThan(60_000)
    expect(res.out).toContain('started')
    // (Output lines, not step titles, which quote the scripts.)
    expect(res.out).toMatch(/^\[a\]\s+started$/m)
    expect(res.out).not.toMatch(/^\[a\]\s+not reached$/m)
    expect(res.out).not.toMatch(/^\[a\]\s+never runs$/m)
    expect(res.out).not.toMatch(/^\[b\]\s+must not run$/m)
    expect(res.out).toMatch(/^\[a\]\s+· step 1 cancelled$/m)

    const h2 = openDatabase(cancelDir)
    try {
      const store = new RunStore(h2)
      const { run, jobs } = store.getRun(store.listRuns(1)[0]!.id)
      expect(run.state).toBe('cancelled')
      expect(run.finishedAt).not.toBeNull()
      const [a, b] = jobs
      expect(a!.state).toBe('cancelled')
      expect(a!.steps.map((s) => s.state)).toEqual(['cancelled', 'cancelled'])
      expect(b!.state).toBe('cancelled')
      expect(b!.startedAt).toBeNull()
    } finally {
      h2.close()
    }
    expect(
      await engine.listContainers({ all: true, filters: { label: [`io.yardmaster.instance=${instance}`] } }),
    ).toEqual([])
  })

  it('lists past runs with yardmaster history', async () => {
    const res = await cli(['history', '--data-dir', dataDir])
    expect(res.code).toBe(0)
    const rows = res.out.trim().split('\n')
    expect(rows[0]).toBe('RUN\tSTATE\tSTARTED\tDURATION\tJOBS\tWORKFLOW')
    expect(rows[1]).toMatch(/^2\tfailed\t.*\t2\tfails first /)
    expect(rows[2]).toMatch(/^1\tsucceeded\t.*\t2\ttwo hosts /)
    const json = JSON.parse((await cli(['history', '--json', '--data-dir', dataDir])).out) as Array<{
      id: number
    }>
    expect(json.map((r) => r.id)).toEqual([2, 1])
  })

  afterAll(() => {})
})
