/**
 * Concurrency groups across real `yardmaster run` processes sharing one history, on the lab:
 * cancel-in-progress stops the older run; a killed orchestrator does not block its group.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { spawnCli, tempDir } from '../support/cli'
import { hostEngine, lab } from '../support/lab'

const start = (wf: string, dataDir: string) =>
  spawnCli(['run', wf, '--farm', lab().farmFile, '--data-dir', dataDir])

const workflow = (dir: string, cancel: boolean) => {
  const wf = join(dir, `deploy-${cancel}.yml`)
  writeFileSync(
    wf,
    `on: push\nconcurrency: { group: deploy-prod, cancel-in-progress: ${cancel} }\njobs:\n  deploy:\n    runs-on: general\n    container: lab/busybox:1\n    steps:\n      - run: echo deploying; sleep 20; echo deployed\n`,
  )
  return wf
}

describe('concurrency groups across processes', () => {
  it('cancel-in-progress: the newer run stops the older one, which says why', async () => {
    const dir = tempDir()
    const first = start(workflow(dir, true), dir)
    await first.saw('deploying')
    const second = start(workflow(dir, true), dir)
    const a = await first.done
    expect(a.code).toBe(1)
    expect(a.out).toMatch(
      /job cancelled: cancelled by run 2 in concurrency group "deploy-prod" \(cancel-in-progress\)/,
    )
    second.child.kill('SIGINT')
    await second.done
  }, 60_000)

  it('a killed orchestrator does not hold its group: the next run goes ahead', async () => {
    const dir = tempDir()
    const first = start(workflow(dir, false), dir)
    await first.saw('deploying')
    first.child.kill('SIGKILL')
    await first.done
    const wf = join(dir, 'quick.yml')
    writeFileSync(
      wf,
      'on: push\nconcurrency: deploy-prod\njobs:\n  deploy:\n    runs-on: general\n    container: lab/busybox:1\n    steps:\n      - run: echo next one\n',
    )
    const second = start(wf, dir)
    const b = await second.done
    expect(b.out).toContain('next one')
    expect(b.code).toBe(0)
    const db = openDatabase(dir)
    try {
      expect(db.prepare('SELECT count(*) AS n FROM concurrency_claims').get()).toEqual({ n: 0 })
      // The killed run is not left "running": the next orchestrator found its process gone and
      // marked its job lost (reattaching to it is the recovery work's).
      const runs = new RunStore(db)
      expect(runs.listRuns(5).map((r) => r.state)).toEqual(['succeeded', 'failed'])
      const killed = runs.getRun(runs.listRuns(5)[1]!.id).jobs[0]!
      expect(killed.state).toBe('failed')
      expect(killed.reason).toMatch(/^lost: the Yardmaster process running it \(pid \d+\) stopped$/)
      // Its container outlived it on the host; remove it so the lab stays clean.
      const instance = new RunStore(db).instanceId()
      const engine = hostEngine('n1')
      for (const c of await engine.listContainers({
        all: true,
        filters: { label: [`io.yardmaster.instance=${instance}`] },
      })) {
        await engine.getContainer(c.Id).remove({ force: true })
      }
    } finally {
      db.close()
    }
  }, 60_000)
})
