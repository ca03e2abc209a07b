/**
 * Concurrency groups across real `yardmaster run` processes sharing one history, on the lab:
 * cancel-in-progress stops the older run; a killed orchestrator does not block its group.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { tempDir } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'

function start(wf: string, dataDir: string) {
  const child = spawn(
    process.execPath,
    [join(REPO, 'bin', 'yardmaster.cjs'), 'run', wf, '--farm', lab().farmFile, '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, out })),
  )
  const saw = (text: string, ms = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const t0 = Date.now()
      const tick = setInterval(() => {
        if (out.includes(text)) {
          clearInterval(tick)
          resolve()
        } else if (Date.now() - t0 > ms) {
          clearInterval(tick)
          reject(new Error(`did not see "${text}" in:\n${out}`))
        }
      }, 50)
    })
  return { child, done, saw }
}

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
      // The killed run stays "running" in the history: reattaching to it is the recovery work's.
      expect(new RunStore(db).listRuns(5).map((r) => r.state)).toEqual(['succeeded', 'running'])
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
