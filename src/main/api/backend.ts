/**
 * The backend behind every transport: implements the shared contract (src/shared/api.ts) on
 * top of core, and turns store changes into events. Handlers are grouped by area.
 */
import type {
  ApiEvents,
  ApiMethods,
  Envelope,
  EventName,
  MethodArgs,
  MethodName,
  MethodResult,
} from '../../shared/api'
import type { FarmService } from '../core/farm/farm-service'
import type { Orchestrator } from '../core/orchestrator/orchestrator'
import type { RunStore } from '../core/store/run-store'
import type { WorkflowCatalog } from '../core/workflow/workflow-catalog'
import type { SecretStore } from '../core/secrets/secret-store'
import { farmHandlers } from './farm-handlers'
import { queueHandlers } from './queue-handlers'
import { runHandlers } from './run-handlers'
import { workflowHandlers } from './workflow-handlers'
import { secretHandlers } from './secret-handlers'

export interface BackendContext {
  store: RunStore
  /** The farm (replaced when its file is edited), its health monitor and its node operations. */
  farmService: FarmService
  /** The queue, the runs it executes, cancel and re-run. */
  orchestrator: Orchestrator
  workflows: WorkflowCatalog
  /** The farm's secrets: names listed, values set or deleted, never read back. */
  secrets: SecretStore
  dataDir: string
  version: string
}

type Handlers = { [M in MethodName]: (args: MethodArgs<M>) => MethodResult<M> | Promise<MethodResult<M>> }
type Listener = <E extends EventName>(event: E, payload: ApiEvents[E]) => void

export class Backend {
  private readonly handlers: Handlers
  private readonly listeners = new Set<Listener>()
  private watchTimer: NodeJS.Timeout | null = null
  private readonly detachFarm: () => void

  constructor(readonly ctx: BackendContext) {
    this.handlers = {
      'app.info': () => ({ version: ctx.version, dataDir: ctx.dataDir, farmFile: ctx.farmService.farm.file }),
      ...runHandlers(ctx),
      ...farmHandlers(ctx),
      ...queueHandlers(ctx),
      ...workflowHandlers(ctx),
      ...secretHandlers(ctx),
    }
    // node.changed and farm.changed come from the service (its health monitor, its edits).
    this.detachFarm = ctx.farmService.subscribe((event, payload) => this.emit(event, payload))
  }

  /** Calls a method by name with untrusted arguments; never throws, answers in an envelope. */
  async invoke(method: string, args: unknown): Promise<Envelope<unknown>> {
    const handler = (this.handlers as Record<string, ((a: unknown) => unknown) | undefined>)[method]
    if (!handler || !Object.hasOwn(this.handlers, method)) {
      return { ok: false, error: { name: 'UnknownMethod', message: `no such method: ${String(method)}` } }
    }
    try {
      return { ok: true, result: await handler(args ?? {}) }
    } catch (e) {
      const err = e as Error
      return { ok: false, error: { name: err.name || 'Error', message: err.message } }
    }
  }

  call<M extends MethodName>(method: M, args: MethodArgs<M>): Promise<Awaited<ReturnType<ApiMethods[M]>>> {
    return Promise.resolve(this.handlers[method](args) as Awaited<ReturnType<ApiMethods[M]>>)
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  emit<E extends EventName>(event: E, payload: ApiEvents[E]): void {
    for (const l of this.listeners) l(event, payload)
  }

  /**
   * Watches the database for writes by other processes (a `yardmaster run` in a terminal while
   * the UI is open). PRAGMA data_version is a cheap in-memory check; only when it moves do we
   * query what changed.
   */
  watchStore(intervalMs = 250): void {
    const { store } = this.ctx
    let version = store.dataVersion()
    let lastSeq = store.lastSeq()
    let runStates = new Map(store.listRuns(200).map((r) => [r.id, `${r.state}/${r.finishedAt}`]))
    this.watchTimer = setInterval(() => {
      const v = store.dataVersion()
      if (v === version) return
      version = v
      const runs = store.listRuns(200)
      const next = new Map(runs.map((r) => [r.id, `${r.state}/${r.finishedAt}`]))
      const seq = store.lastSeq()
      const logRuns = seq > lastSeq ? store.runsWithLogsAfter(lastSeq) : []
      for (const r of runs) {
        // Any write may be a job or step change inside a running run; tell clients about runs not finished or changed.
        if (next.get(r.id) !== runStates.get(r.id) || r.finishedAt === null)
          this.emit('run.changed', { runId: r.id })
      }
      for (const id of logRuns) this.emit('log.appended', { runId: id, lastSeq: seq })
      // Another process may have queued a run, or a job of its may wait for a slot.
      this.emit('queue.changed', {})
      lastSeq = seq
      runStates = next
    }, intervalMs)
    this.watchTimer.unref()
  }

  /** Stops watching and telling; the farm service is its owner's to stop. */
  close(): void {
    if (this.watchTimer) clearInterval(this.watchTimer)
    this.detachFarm()
    this.listeners.clear()
  }
}
