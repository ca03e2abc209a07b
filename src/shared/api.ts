/**
 * The one typed contract between the backend and every client (Electron IPC, the loopback
 * WebSocket server, in-process tests). Every method takes one object argument and resolves
 * to a value; every event carries one payload. Transports only move these, by name.
 */
import type { AppInfo, LogLine, NodeView, RunDetail, RunSummary } from './model'

export interface ApiMethods {
  'app.info': (args: Record<string, never>) => AppInfo
  'runs.list': (args: { limit?: number }) => RunSummary[]
  'runs.get': (args: { runId: number }) => RunDetail
  /** Log lines of a run with seq > afterSeq, oldest first, at most `limit` (default 5,000). */
  'logs.get': (args: { runId: number; afterSeq?: number; limit?: number }) => LogLine[]
  'farm.nodes': (args: Record<string, never>) => NodeView[]
}

export interface ApiEvents {
  /** A run was created or changed state; clients refresh what they show of it. */
  'run.changed': { runId: number }
  /** New log lines were stored (any run). */
  'log.appended': { runId: number; lastSeq: number }
}

export type MethodName = keyof ApiMethods
export type EventName = keyof ApiEvents
export type MethodArgs<M extends MethodName> = Parameters<ApiMethods[M]>[0]
export type MethodResult<M extends MethodName> = ReturnType<ApiMethods[M]>

/** Errors cross transports in this envelope so their name and message survive. */
export type Envelope<T> = { ok: true; result: T } | { ok: false; error: { name: string; message: string } }

/** What the renderer holds; implemented by the IPC client, the WebSocket client and test fakes. */
export interface ApiClient {
  call<M extends MethodName>(method: M, args: MethodArgs<M>): Promise<MethodResult<M>>
  /** Returns the function that unsubscribes (fits a useEffect cleanup). */
  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void
}

export const METHOD_NAMES: readonly MethodName[] = [
  'app.info',
  'runs.list',
  'runs.get',
  'logs.get',
  'farm.nodes',
]

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && (METHOD_NAMES as readonly string[]).includes(name)
}

/** Thrown by clients when the backend answered with an error envelope. */
export class ApiError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** What the Electron preload exposes as `window.yardmaster`; the IPC client wraps it. */
export interface YardmasterBridge {
  invoke(method: string, args: unknown): Promise<Envelope<unknown>>
  /** Every event, by name; returns the function that unsubscribes. */
  on(listener: (event: string, payload: unknown) => void): () => void
}
