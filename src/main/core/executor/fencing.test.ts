import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, type Db } from '../store/database'
import { RunStore } from '../store/run-store'
import { fenceLeftovers } from './fencing'
import type { Leftover, NodeExecutor } from './job-environment'

let dir: string
let db: Db
let store: RunStore
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-fence-'))
  db = openDatabase(dir)
  store = new RunStore(db)
})
afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Marks `n` attempts on node n1 as left behind; returns their attempt ids. */
function leftBehind(n: number): number[] {
  const run = store.createRun(
    {
      workflowName: 'w',
      workflowFile: '/w.yml',
      farmFile: null,
      jobs: Array.from({ length: n }, (_, i) => ({
        key: `j${i}`,
        name: `j${i}`,
        needs: [],
        runsOn: [],
        steps: [],
      })),
    },
    1,
  )
  return [...run.jobIds.values()].map((jobId) => {
    const a = store.startAttempt({ jobId, node: 'n1', claimId: 1, holder: 'dead', at: 1 })
    store.markFence(a.id)
    return a.id
  })
}

/** An executor whose fences take until `release` is called; counts them per job. */
function slowExecutor() {
  const calls: string[] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const executor: NodeExecutor = {
    prepare: () => Promise.reject(new Error('not used')),
    fence: async (l: Leftover) => {
      calls.push(l.jobKey)
      await gate
    },
  }
  return { executor, calls, release: () => release() }
}

describe('fenceLeftovers', () => {
  it('fences each leftover once when several jobs start on the node together', async () => {
    leftBehind(3)
    const { executor, calls, release } = slowExecutor()
    const said: string[] = []
    const signal = new AbortController().signal
    const all = Array.from({ length: 5 }, () =>
      fenceLeftovers(store, 'n1', executor, signal, (m) => said.push(m)),
    )
    await new Promise((r) => setTimeout(r, 10))
    release()
    await Promise.all(all)
    expect(calls).toEqual(['j0', 'j1', 'j2'])
    expect(said).toHaveLength(3)
    expect(store.fencesOn('n1')).toEqual([])
  })

  it('fences, after the running fence, what was marked while it ran', async () => {
    leftBehind(1)
    const { executor, calls, release } = slowExecutor()
    const signal = new AbortController().signal
    const first = fenceLeftovers(store, 'n1', executor, signal, () => {})
    await new Promise((r) => setTimeout(r, 10))
    const [late] = leftBehind(1)
    const second = fenceLeftovers(store, 'n1', executor, signal, () => {})
    release()
    await Promise.all([first, second])
    expect(calls).toHaveLength(2)
    expect(store.fencesOn('n1').map((f) => f.attemptId)).not.toContain(late)
  })

  it('throws, naming the attempt, when the node does not answer; a waiting caller then tries itself', async () => {
    leftBehind(1)
    let fail = true
    const executor: NodeExecutor = {
      prepare: () => Promise.reject(new Error('not used')),
      fence: async () => {
        await new Promise((r) => setTimeout(r, 5))
        if (fail) throw new Error('connection refused')
      },
    }
    const signal = new AbortController().signal
    const first = fenceLeftovers(store, 'n1', executor, signal, () => {})
    const second = fenceLeftovers(store, 'n1', executor, signal, () => {})
    await expect(first).rejects.toThrow(
      /could not stop what attempt 1 of run 1 job j0 left on n1: connection refused/,
    )
    fail = false
    await second
    expect(store.fencesOn('n1')).toEqual([])
  })

  it('stops waiting for another caller’s fence when its own signal aborts', async () => {
    leftBehind(1)
    const { executor, release } = slowExecutor()
    const first = fenceLeftovers(store, 'n1', executor, new AbortController().signal, () => {})
    const mine = new AbortController()
    const second = fenceLeftovers(store, 'n1', executor, mine.signal, () => {})
    mine.abort(new Error('cancelled'))
    await expect(second).rejects.toThrow('cancelled')
    release()
    await first
  })
})
