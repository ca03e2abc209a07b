/** Concurrency groups across "processes" (gates with their own pids) over one real SQLite history. */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, type Db } from '../store/database'
import { RunStore } from '../store/run-store'
import { ConcurrencyGate, concurrencyOf } from './concurrency-gate'

let dir: string
let db: Db
let store: RunStore
const alive = new Set<number>([1, 2, 3])
const gate = (pid: number) =>
  new ConcurrencyGate(store, { pollMs: 10, host: 'h', pid, alive: (p) => alive.has(p) })
const newRun = () =>
  store.createRun({
    workflowName: 'w',
    workflowFile: '/w.yml',
    farmFile: null,
    jobs: [{ key: 'a', name: 'a', needs: [], runsOn: [], steps: ['s'] }],
  }).runId
const never = new AbortController().signal

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-conc-'))
  db = openDatabase(dir)
  store = new RunStore(db)
})
afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('concurrencyOf', () => {
  it('reads a group name or a mapping with cancel-in-progress', () => {
    expect(concurrencyOf('deploy')).toEqual({ group: 'deploy', cancelInProgress: false })
    expect(concurrencyOf({ group: 'ci-main', 'cancel-in-progress': true })).toEqual({
      group: 'ci-main',
      cancelInProgress: true,
    })
    expect(concurrencyOf(null)).toBeNull()
    expect(concurrencyOf('')).toBeNull()
    expect(concurrencyOf({ 'cancel-in-progress': true })).toBeNull()
  })
})

describe('ConcurrencyGate', () => {
  const setting = { group: 'g', cancelInProgress: false }

  it('lets one holder run, makes the next wait, and hands over on release', async () => {
    const a = await gate(1).acquire(setting, { runId: newRun(), jobId: null }, never)
    expect(a.kind).toBe('acquired')
    const runB = newRun()
    let waitedFor: number | null = null
    const b = gate(2).acquire(
      setting,
      { runId: runB, jobId: null },
      never,
      (held) => (waitedFor = held.runId),
    )
    await new Promise((r) => setTimeout(r, 50))
    expect(waitedFor).toBe(1)
    gate(1).release((a as { claimId: number }).claimId)
    expect((await b).kind).toBe('acquired')
  })

  it('replaces the older waiter by a newer one, which is told why', async () => {
    const a = await gate(1).acquire(setting, { runId: newRun(), jobId: null }, never)
    const b = gate(2).acquire(setting, { runId: newRun(), jobId: null }, never)
    await new Promise((r) => setTimeout(r, 30))
    const c = gate(3).acquire(setting, { runId: newRun(), jobId: null }, never)
    expect(await b).toEqual({
      kind: 'cancelled',
      reason: 'replaced by a newer run waiting in concurrency group "g"',
    })
    gate(1).release((a as { claimId: number }).claimId)
    expect((await c).kind).toBe('acquired')
  })

  it('with cancel-in-progress asks the running holder to stop', async () => {
    const a = await gate(1).acquire(setting, { runId: newRun(), jobId: null }, never)
    const claimA = (a as { claimId: number }).claimId
    const stopped = new Promise<string>((resolve) => gate(1).watch(claimA, resolve))
    const runB = newRun()
    const b = gate(2).acquire({ group: 'g', cancelInProgress: true }, { runId: runB, jobId: null }, never)
    expect(await stopped).toBe(`cancelled by run ${runB} in concurrency group "g" (cancel-in-progress)`)
    gate(1).release(claimA)
    expect((await b).kind).toBe('acquired')
  })

  it('sweeps claims of finished runs and of dead processes, so nothing blocks forever', async () => {
    const runA = newRun()
    await gate(1).acquire(setting, { runId: runA, jobId: null }, never)
    store.setRunState(runA, 'failed')
    expect((await gate(2).acquire(setting, { runId: newRun(), jobId: null }, never)).kind).toBe('acquired')
    alive.delete(2)
    expect((await gate(3).acquire(setting, { runId: newRun(), jobId: null }, never)).kind).toBe('acquired')
    alive.add(2)
  })

  it("asks this host's process table by default: an exited process's claim is swept, a live one's holds", async () => {
    const exited = () => spawnSync('true').pid
    const real = (pid: number) => new ConcurrencyGate(store, { pollMs: 10, pid })
    await real(exited()).acquire(setting, { runId: newRun(), jobId: null }, never)
    const mine = await real(process.pid).acquire(setting, { runId: newRun(), jobId: null }, never)
    expect(mine.kind).toBe('acquired')
    // This process is alive: the next one waits for it, told who holds the group.
    const abort = new AbortController()
    const runMine = store.concurrencyClaims('g')[0]!.runId
    let heldBy: number | null = null
    const next = real(exited()).acquire(setting, { runId: newRun(), jobId: null }, abort.signal, (held) => {
      heldBy = held.runId
      abort.abort()
    })
    expect((await next).kind).toBe('cancelled')
    expect(heldBy).toBe(runMine)
  })

  it('gives up waiting when its run is cancelled', async () => {
    await gate(1).acquire(setting, { runId: newRun(), jobId: null }, never)
    const abort = new AbortController()
    const b = gate(2).acquire(setting, { runId: newRun(), jobId: null }, abort.signal)
    setTimeout(() => abort.abort(), 20)
    expect(await b).toEqual({
      kind: 'cancelled',
      reason: 'the run was cancelled while waiting for its concurrency group',
    })
    expect(store.concurrencyClaims('g')).toHaveLength(1)
  })
})
