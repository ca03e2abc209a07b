/**
 * A step outlives the orchestrator that started it (issue 11, reattach): on a lab host, a step's
 * connection is torn down mid-step as a killed orchestrator's would be; the step goes on in its
 * container, and a fresh connection takes the job over (DockerExecutor.adopt) and follows the
 * step's record from its start to its exit code. Nothing of the job is left afterwards.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { NodeSessions } from '../../src/main/core/executor/node-sessions'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { JobEnvironment, Leftover, StepCommand } from '../../src/main/core/executor/job-environment'
import { SshPool } from '../../src/main/core/transport/ssh-pool'
import { hostEngine, lab } from '../support/lab'
import { until } from '../support/until'

const farm = () => {
  const f = loadFarmFile(lab().farmFile)
  return { ...f, nodes: f.nodes.filter((n) => n.name === 'n1') }
}
const pools: SshPool[] = []
afterAll(() => pools.forEach((p) => p.closeAll()))

/** Sessions on a pool of their own, so closing it drops their connections as a process's death would. */
async function connect() {
  const pool = new SshPool()
  pools.push(pool)
  const f = farm()
  const sessions = new NodeSessions(f, { pool, timeoutMs: 30_000 })
  return { pool, session: await sessions.open(f.nodes[0]!) }
}

const LINES = 30
const script = `i=1; while [ $i -le ${LINES} ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done; exit 4`

describe('a step outlives its orchestrator', () => {
  it('goes on when its connection dies, and the next orchestrator follows it to its exit code', async () => {
    const leftover: Leftover = {
      instance: `rec-${randomBytes(4).toString('hex')}`,
      runId: 1,
      jobKey: 'record',
      attempt: 1,
      ref: null,
    }
    const first = await connect()
    const env = await first.session.executor.prepare(
      { ...leftover, image: 'lab/busybox:1', graceMs: 0 },
      () => {},
      new AbortController().signal,
    )
    leftover.ref = env.ref
    const cmd: StepCommand = {
      script,
      shell: 'sh',
      env: {},
      workingDirectory: null,
      record: `${env.records}/0`,
      checkpoint: JSON.stringify({ v: 1, step: 0 }),
    }
    let seen = ''
    const running = env.runStep(
      cmd,
      (_s, chunk) => void (seen += chunk.toString()),
      new AbortController().signal,
    )
    await until(() => seen.includes('line 3\n'), 'the step printed', 60_000, 20)
    // The orchestrator dies: its connection to the node goes.
    first.pool.closeAll()
    await expect(running).rejects.toThrow(/connection to the node dropped/)

    const second = await connect()
    let adopted: JobEnvironment | null = null
    try {
      adopted = await second.session.executor.adopt!(leftover, 0, new AbortController().signal)
      expect(adopted).not.toBeNull()
      expect(await adopted!.readFile!(`${env.records}/0/state.json`, new AbortController().signal)).toBe(
        cmd.checkpoint,
      )
      const out = { stdout: '', stderr: '' }
      const code = await adopted!.resumeStep!(
        `${env.records}/0`,
        (s, chunk) => void (out[s] += chunk.toString()),
        new AbortController().signal,
      )
      expect(code).toBe(4)
      // Every line, once, in order: those printed before the connection went and after.
      const want = (p: string) => Array.from({ length: LINES }, (_, i) => `${p} ${i + 1}`)
      expect(out.stdout.trim().split('\n')).toEqual(want('line'))
      expect(out.stderr.trim().split('\n')).toEqual(want('err'))
      // A step that never started there says so.
      expect(await adopted!.resumeStep!(`${env.records}/1`, () => {}, new AbortController().signal)).toBe(
        'not-started',
      )
      expect(await adopted!.readFile!(`${env.records}/1/state.json`, new AbortController().signal)).toBeNull()
    } finally {
      expect(await (adopted ?? env).dispose()).toBe(true)
    }
    // Gone now: nothing to take over.
    expect(await second.session.executor.adopt!(leftover, 0, new AbortController().signal)).toBeNull()
    const left = await hostEngine('n1').listContainers({
      all: true,
      filters: { label: [`io.yardmaster.instance=${leftover.instance}`] },
    })
    expect(left).toEqual([])
  }, 120_000)
})
