/**
 * Matrices on the lab: each instance on the host its labels name (checked on the hosts),
 * dynamic matrices from job outputs, fail-fast and max-parallel, as recorded in the history.
 */
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/shared/model'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir, type CliResult } from '../support/cli'
import { lab, REPO, runEvents } from '../support/lab'

describe('matrix jobs on the lab', () => {
  let res: CliResult
  let jobs: JobView[]
  let instance: string
  let runId: number
  let started: number

  beforeAll(async () => {
    const dataDir = tempDir()
    started = Date.now()
    res = await cli([
      'run',
      join(REPO, 'test', 'fixtures', 'lab', 'matrix.yml'),
      '--farm',
      lab().farmFile,
      '--data-dir',
      dataDir,
    ])
    const db = openDatabase(dataDir)
    try {
      const store = new RunStore(db)
      runId = store.listRuns(1)[0]!.id
      jobs = store.getRun(runId).jobs
      instance = store.instanceId()
    } finally {
      db.close()
    }
  }, 60_000)

  const job = (key: string) => jobs.find((j) => j.key === key)

  it('expands axes, exclude and include into named instances on the right hosts', async () => {
    expect(jobs.filter((j) => j.key.startsWith('build')).map((j) => [j.key, j.nodeName, j.state])).toEqual([
      ['build (gpu, 1, yes)', 'n2', 'succeeded'],
      ['build (gpu, 2, yes)', 'n2', 'succeeded'],
      ['build (arm64, 1)', 'n3', 'succeeded'],
      ['build (general, 9)', 'n1', 'succeeded'],
    ])
    expect(res.out).toMatch(/^\[build \(gpu, 2, yes\)\]\s+host=gpu n=2 extra=yes index=1\/4$/m)
    expect(res.out).toMatch(/^\[build \(arm64, 1\)\]\s+host=arm64 n=1 extra= index=2\/4$/m)
    const created = async (host: string) =>
      (await runEvents(host, { instance, runId }, started))
        .filter((e) => e.action === 'create')
        .map((e) => e.job)
        .sort()
    expect(await created('n3')).toEqual(['build (arm64, 1)'])
    expect((await created('n2')).filter((j) => j.startsWith('build'))).toEqual([
      'build (gpu, 1, yes)',
      'build (gpu, 2, yes)',
    ])
  })

  it('expands a matrix from a needed job’s output when that job is done', () => {
    expect(jobs.filter((j) => j.key.startsWith('dynamic')).map((j) => [j.key, j.state])).toEqual([
      ['dynamic (x)', 'succeeded'],
      ['dynamic (y)', 'succeeded'],
    ])
    expect(job('dynamic (x)')!.startedAt!).toBeGreaterThanOrEqual(job('gen')!.finishedAt!)
    expect(res.out).toMatch(/^\[dynamic \(y\)\]\s+item=y$/m)
  })

  it('runs at most max-parallel instances at a time', () => {
    const serial = jobs.filter((j) => j.key.startsWith('serial'))
    expect(serial.map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded'])
    for (let i = 1; i < serial.length; i++)
      expect(serial[i]!.startedAt!).toBeGreaterThanOrEqual(serial[i - 1]!.finishedAt!)
  })

  it('cancels the other instances when one fails (fail-fast), and fails the run', () => {
    expect(res.code).toBe(1)
    expect(job('failfast (bad)')).toMatchObject({ state: 'failed', exitCode: 1 })
    expect(job('failfast (slow)')).toMatchObject({
      state: 'cancelled',
      reason: 'cancelled by fail-fast: failfast (bad) failed',
    })
    expect(res.out).not.toMatch(/^\[failfast \(slow\)\]\s+slow finished$/m)
  })
})
