/** The console's state against a fake backend: snapshot, then events; no polling. */
import { describe, expect, it } from 'vitest'
import type { LogLine, RunDetail, RunSummary } from '../../../shared/model'
import { createAppStore } from './app-store'
import { fakeApi, settle } from './fake-api'

function run(id: number, state: RunSummary['state'] = 'succeeded'): RunSummary {
  return {
    id,
    workflowName: `wf${id}`,
    workflowFile: `/w${id}.yml`,
    state,
    createdAt: 1,
    startedAt: 1,
    finishedAt: 2,
    expectedFinish: null,
    cancelling: null,
    jobCount: 1,
  }
}
function line(seq: number, runId: number): LogLine {
  return { seq, runId, jobKey: 'a', stepIndex: 0, attempt: 1, stream: 'stdout', text: `line ${seq}`, at: seq }
}

describe('app store', () => {
  it('loads runs, opens the newest, and follows its log through events', async () => {
    let runs = [run(2, 'running'), run(1)]
    const logs: LogLine[] = [line(1, 2), line(2, 2)]
    const detail = (id: number): RunDetail => ({ run: runs.find((r) => r.id === id)!, jobs: [] })
    const fake = fakeApi({
      'app.info': () => ({ version: '1', dataDir: '/d', farmFile: null }),
      'runs.list': () => runs,
      'runs.get': ({ runId }) => detail(runId),
      'logs.get': ({ runId, afterSeq = 0 }) => logs.filter((l) => l.runId === runId && l.seq > afterSeq),
    })
    const store = createAppStore(fake.api)
    const stop = store.getState().start()
    await settle()
    await settle()
    expect(store.getState().runs.map((r) => r.id)).toEqual([2, 1])
    expect(store.getState().selectedRunId).toBe(2)
    expect(store.getState().logs.map((l) => l.seq)).toEqual([1, 2])

    // New lines arrive: only lines after the last held one are asked for.
    logs.push(line(3, 2))
    fake.emit('log.appended', { runId: 2, lastSeq: 3 })
    await settle()
    expect(store.getState().logs.map((l) => l.seq)).toEqual([1, 2, 3])
    expect(fake.calls.at(-1)).toBe('logs.get {"runId":2,"afterSeq":2,"limit":5000}')

    // Lines of another run are ignored.
    fake.emit('log.appended', { runId: 1, lastSeq: 9 })
    await settle()
    expect(fake.calls.filter((c) => c.startsWith('logs.get {"runId":1')).length).toBe(0)

    // The run finishes: list and detail refresh.
    runs = [run(2, 'succeeded'), run(1)]
    fake.emit('run.changed', { runId: 2 })
    await settle()
    expect(store.getState().detail?.run.state).toBe('succeeded')
    expect(store.getState().runs[0]!.state).toBe('succeeded')

    // Selecting another run starts its log from scratch.
    store.getState().selectRun(1)
    await settle()
    expect(store.getState().logs).toEqual([])
    expect(store.getState().detail?.run.id).toBe(1)

    stop()
    expect(fake.listenerCount()).toBe(0)
  })

  it('shows a backend error instead of failing silently', async () => {
    const fake = fakeApi({
      'app.info': () => ({ version: '1', dataDir: '/d', farmFile: null }),
      'runs.list': () => {
        throw new Error('the history database is locked')
      },
    })
    const store = createAppStore(fake.api)
    store.getState().start()
    await settle()
    expect(store.getState().error).toBe('the history database is locked')
  })
})
