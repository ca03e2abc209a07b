/**
 * What the console shows, in one zustand store. Snapshot, then subscribe: each view loads its
 * state once and then applies events; after a reconnect it loads again. No polling.
 */
import { createStore } from 'zustand/vanilla'
import type { ApiClient } from '../../../shared/api'
import type { AppInfo, LogLine, RunDetail, RunSummary } from '../../../shared/model'

/** The console's views; Runs is the one it opens on. */
export type ViewName = 'runs' | 'workflows' | 'queue' | 'nodes'

export interface AppState {
  info: AppInfo | null
  view: ViewName
  runs: RunSummary[]
  selectedRunId: number | null
  detail: RunDetail | null
  logs: LogLine[]
  /** Job whose logs are shown; null shows every job. */
  logJob: string | null
  connected: boolean
  error: string | null
  start(): () => void
  selectRun(runId: number | null): void
  showJob(jobKey: string | null): void
  showView(view: ViewName): void
  setConnected(connected: boolean): void
}

const LOG_PAGE = 5000

export function createAppStore(api: ApiClient, onReconnect?: (l: () => void) => () => void) {
  return createStore<AppState>()((set, get) => {
    const fail = (e: unknown) => set({ error: (e as Error).message })

    const loadRuns = async () => {
      const runs = await api.call('runs.list', { limit: 200 })
      set({ runs, error: null })
      if (get().selectedRunId === null && runs[0]) get().selectRun(runs[0].id)
    }
    const loadDetail = async (runId: number) => {
      const detail = await api.call('runs.get', { runId })
      if (get().selectedRunId === runId) set({ detail })
    }
    // Fetches lines after the last one held, page by page, so a reload and an event share one path.
    let fetching: Promise<void> | null = null
    const loadLogs = async (runId: number): Promise<void> => {
      if (fetching) return fetching.then(() => loadLogs(runId))
      fetching = (async () => {
        for (;;) {
          if (get().selectedRunId !== runId) return
          const held = get().logs
          const afterSeq = held.length ? held[held.length - 1]!.seq : 0
          const lines = await api.call('logs.get', { runId, afterSeq, limit: LOG_PAGE })
          if (get().selectedRunId !== runId) return
          if (lines.length) set({ logs: [...get().logs, ...lines] })
          if (lines.length < LOG_PAGE) return
        }
      })().finally(() => (fetching = null))
      return fetching
    }
    const refresh = () => {
      loadRuns().catch(fail)
      const id = get().selectedRunId
      if (id !== null) {
        loadDetail(id).catch(fail)
        loadLogs(id).catch(fail)
      }
    }

    return {
      info: null,
      view: 'runs',
      runs: [],
      selectedRunId: null,
      detail: null,
      logs: [],
      logJob: null,
      connected: true,
      error: null,
      start() {
        api
          .call('app.info', {})
          .then((info) => set({ info }))
          .catch(fail)
        refresh()
        const offs = [
          api.on('run.changed', ({ runId }) => {
            loadRuns().catch(fail)
            if (runId === get().selectedRunId) loadDetail(runId).catch(fail)
          }),
          api.on('log.appended', ({ runId }) => {
            if (runId === get().selectedRunId) loadLogs(runId).catch(fail)
          }),
          onReconnect?.(refresh) ?? (() => {}),
        ]
        return () => offs.forEach((off) => off())
      },
      selectRun(runId) {
        set({ selectedRunId: runId, detail: null, logs: [], logJob: null })
        if (runId === null) return
        loadDetail(runId).catch(fail)
        loadLogs(runId).catch(fail)
      },
      showJob(jobKey) {
        set({ logJob: jobKey })
      },
      showView(view) {
        set({ view })
      },
      setConnected(connected) {
        set({ connected })
      },
    }
  })
}

export type AppStore = ReturnType<typeof createAppStore>
