/**
 * The queue, the workflows the console can run and the secrets it gives them. Snapshot
 * (`queue.list`, `workflows.list`, `secrets.list`), then `queue.changed` takes the queue again;
 * a reconnect takes all three. Trigger, cancel and re-run
 * go through here so their errors reach the button that asked.
 */
import { createStore } from 'zustand/vanilla'
import type { ApiClient, MethodArgs } from '../../../shared/api'
import type { QueueView, SecretView, TriggeredView, WorkflowView } from '../../../shared/model'

export interface QueueState {
  queue: QueueView
  workflows: WorkflowView[]
  /** False until the first snapshot answered. */
  loaded: boolean
  error: string | null
  start(): () => void
  trigger(args: MethodArgs<'runs.trigger'>): Promise<TriggeredView>
  cancelRun(runId: number): Promise<void>
  cancelJob(runId: number, jobKey: string): Promise<void>
  rerun(runId: number, mode: 'all' | 'failed'): Promise<TriggeredView>
  setPriority(queueId: number, priority: MethodArgs<'queue.setPriority'>['priority']): Promise<void>
  remove(queueId: number): Promise<void>
  addFolder(folder: string): Promise<void>
  /** The farm's stored secrets, names only: values go one way (set), never back. */
  secrets: SecretView[]
  setSecret(name: string, value: string): Promise<void>
  deleteSecret(name: string): Promise<void>
}

const EMPTY: QueueView = { runs: [], jobs: [], failed: [] }

export function createQueueStore(api: ApiClient, onReconnect?: (l: () => void) => () => void) {
  return createStore<QueueState>()((set) => {
    const fail = (e: unknown) => set({ error: (e as Error).message })
    const loadQueue = async () => set({ queue: await api.call('queue.list', {}), loaded: true, error: null })
    const loadWorkflows = async () => set({ workflows: await api.call('workflows.list', {}) })
    const loadSecrets = async () => set({ secrets: await api.call('secrets.list', {}) })
    const refresh = () => {
      loadQueue().catch(fail)
      loadWorkflows().catch(fail)
      loadSecrets().catch(fail)
    }
    return {
      queue: EMPTY,
      workflows: [],
      secrets: [],
      loaded: false,
      error: null,
      start() {
        refresh()
        const offs = [
          api.on('queue.changed', () => loadQueue().catch(fail)),
          onReconnect?.(refresh) ?? (() => {}),
        ]
        return () => offs.forEach((off) => off())
      },
      async trigger(args) {
        const t = await api.call('runs.trigger', args)
        // A new file is now among the known ones (history).
        loadWorkflows().catch(fail)
        return t
      },
      async cancelRun(runId) {
        await api.call('runs.cancel', { runId })
      },
      async cancelJob(runId, jobKey) {
        await api.call('jobs.cancel', { runId, jobKey })
      },
      rerun: (runId, mode) => api.call('runs.rerun', { runId, mode }),
      async setPriority(queueId, priority) {
        set({ queue: await api.call('queue.setPriority', { queueId, priority }) })
      },
      async remove(queueId) {
        set({ queue: await api.call('queue.remove', { queueId }) })
      },
      async addFolder(folder) {
        set({ workflows: await api.call('workflows.addFolder', { folder }) })
      },
      // A workflow's missing secrets change with the stored ones.
      async setSecret(name, value) {
        set({ secrets: await api.call('secrets.set', { name, value }) })
        await loadWorkflows()
      },
      async deleteSecret(name) {
        set({ secrets: await api.call('secrets.delete', { name }) })
        await loadWorkflows()
      },
    }
  })
}

export type QueueStore = ReturnType<typeof createQueueStore>
