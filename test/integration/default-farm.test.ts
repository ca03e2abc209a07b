/**
 * With no --farm, Yardmaster runs on this machine: through the local Docker engine when one
 * answers (here: a lab engine's socket given as DOCKER_HOST), else in a local shell.
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir } from '../support/cli'
import { host, REPO, runEvents } from '../support/lab'

const hello = join(REPO, 'resources', 'pipelines', 'hello.yml')
const saved = {
  DOCKER_HOST: process.env.DOCKER_HOST,
  YARDMASTER_LOCAL_IMAGE: process.env.YARDMASTER_LOCAL_IMAGE,
}

function lastRun(dataDir: string) {
  const db = openDatabase(dataDir)
  try {
    const store = new RunStore(db)
    return { ...store.getRun(store.listRuns(1)[0]!.id), instance: store.instanceId() }
  } finally {
    db.close()
  }
}

describe('the embedded default farm', () => {
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })

  it('uses a local shell when no Docker engine answers', async () => {
    process.env.DOCKER_HOST = `unix://${join(tempDir(), 'no-engine.sock')}`
    const dataDir = tempDir()
    const res = await cli(['run', hello, '--data-dir', dataDir])
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/\[build\]\s+hello from Linux/)
    expect(res.out).toMatch(/\[test\]\s+CI is true/)
    const { run, jobs } = lastRun(dataDir)
    expect(run.state).toBe('succeeded')
    expect(jobs.map((j) => [j.key, j.nodeName, j.image, j.state])).toEqual([
      ['build', 'local', null, 'succeeded'],
      ['test', 'local', null, 'succeeded'],
    ])
  })

  it('uses the local Docker engine when one answers', async () => {
    const started = Date.now()
    process.env.DOCKER_HOST = `unix://${host('n1').dockerSocket}`
    process.env.YARDMASTER_LOCAL_IMAGE = 'lab/debian:bookworm'
    const dataDir = tempDir()
    const res = await cli(['run', hello, '--data-dir', dataDir])
    expect(res.code).toBe(0)
    const { run, jobs, instance } = lastRun(dataDir)
    expect(jobs.every((j) => j.nodeName === 'local' && j.image === 'lab/debian:bookworm')).toBe(true)
    const created = (await runEvents('n1', { instance, runId: run.id }, started))
      .filter((e) => e.action === 'create')
      .map((e) => e.job)
    expect(created).toEqual(['build', 'test'])
  })
})
