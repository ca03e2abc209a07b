/**
 * The one typed contract between the backend and every client (Electron IPC, the loopback
 * WebSocket server, in-process tests). Every method takes one object argument and resolves
 * to a value; every event carries one payload. Transports only move these, by name.
 */
import type {
  AppInfo,
  ConnectionTestView,
  ContainerView,
  HostKeyView,
  ImageCopyView,
  ImageView,
  LogLine,
  NodeEdit,
  NodeEventRecord,
  NodeLiveView,
  NodeStatusView,
  Priority,
  PruneReport,
  QueueView,
  RunDetail,
  RunSummary,
  SecretView,
  Series,
  TriggeredView,
  WorkflowView,
} from './model'

export interface ApiMethods {
  'app.info': (args: Record<string, never>) => AppInfo
  'runs.list': (args: { limit?: number }) => RunSummary[]
  'runs.get': (args: { runId: number }) => RunDetail
  /** Log lines of a run with seq > afterSeq, oldest first, at most `limit` (default 5,000). */
  'logs.get': (args: { runId: number; afterSeq?: number; limit?: number }) => LogLine[]
  /** Every node of the farm with its live state (from the health monitor), in farm-file order. */
  'farm.nodes': (args: Record<string, never>) => NodeLiveView[]
  /** Probes the nodes now (all, or one): facts and capabilities, or why a node could not be probed. */
  'farm.probe': (args: { node?: string }) => NodeStatusView[]
  /**
   * Changes a node's declared fields and writes the farm file back with its comments and layout
   * kept. Refused for the embedded default, and when the file changed on disk since it was loaded.
   */
  'farm.editNode': (args: { node: string; edit: NodeEdit }) => NodeLiveView
  /**
   * Reads the farm file again (after it was edited elsewhere); its nodes as `farm.nodes` shows
   * them. A broken file is refused with its file:line:col problems and the farm stays as it was.
   */
  'farm.reload': (args: Record<string, never>) => NodeLiveView[]
  /** A node's health series from `from` (epoch ms) to now; the resolution follows the span. */
  'node.series': (args: { node: string; from: number }) => Series
  /** State changes, newest first: of one node, or of all. */
  'node.events': (args: { node?: string; limit?: number }) => NodeEventRecord[]
  'node.test': (args: { node: string }) => ConnectionTestView
  /** drain: finish current jobs, take no new ones; cordon: take no new jobs; resume: back in service. */
  'node.admin': (args: {
    node: string
    action: 'drain' | 'cordon' | 'resume'
    reason?: string
  }) => NodeLiveView
  'node.containers': (args: { node: string }) => ContainerView[]
  'node.images': (args: { node: string }) => ImageView[]
  /** Removes only what Yardmaster left behind (stopped job containers, its volumes, dangling images). */
  'node.prune': (args: { node: string }) => PruneReport
  /** Makes sure `image` is on `node`, copying it from `from` (a node, or `local`) by save | load. */
  'node.copyImage': (args: { node: string; image: string; from: string }) => ImageCopyView
  /** The key the node's sshd offers now and what the known_hosts files say of it. */
  'node.hostKey': (args: { node: string }) => HostKeyView
  /**
   * Trust on first use: records the key the node offers, if its fingerprint is still the one the
   * user saw (`fingerprint`), and no known_hosts holds another key for it.
   */
  'node.trust': (args: { node: string; fingerprint: string }) => HostKeyView
  /**
   * Queues a run of a workflow file. Refused, with nothing recorded, when the file cannot be read,
   * the workflow is invalid (file:line:col), or an input is unknown, missing or of the wrong type.
   */
  'runs.trigger': (args: {
    workflowFile: string
    inputs?: Record<string, string>
    event?: string
    priority?: Priority
    /** Extra labels every job's node must carry. */
    labels?: string[]
  }) => TriggeredView
  /** Stops a queued or running run; it is recorded as cancelled. */
  'runs.cancel': (args: { runId: number }) => { runId: number }
  /** Stops one job of a running run; the jobs that need it are skipped. */
  'jobs.cancel': (args: { runId: number; jobKey: string }) => { runId: number }
  /** Runs a finished run again: all jobs, the failed ones (and what needs them), or one job. */
  'runs.rerun': (args: { runId: number; mode: 'all' | 'failed' | 'job'; job?: string }) => TriggeredView
  /** Runs waiting to start and jobs waiting for a slot, in order of service, with why. */
  'queue.list': (args: Record<string, never>) => QueueView
  'queue.setPriority': (args: { queueId: number; priority: Priority }) => QueueView
  /** Removes a run that has not started (or dismisses one that could not start). */
  'queue.remove': (args: { queueId: number }) => QueueView
  /** Workflows the console knows (run before, or in an added folder), each validated. */
  'workflows.list': (args: Record<string, never>) => WorkflowView[]
  /** Adds a folder whose workflow files the console lists (kept in the data directory). */
  'workflows.addFolder': (args: { folder: string }) => WorkflowView[]
  'workflows.removeFolder': (args: { folder: string }) => WorkflowView[]
  /** The farm's stored secrets: names and when each was set, never a value. */
  'secrets.list': (args: Record<string, never>) => SecretView[]
  /**
   * Stores a secret (sealed at rest; given to the runs whose workflow names it). Write-only:
   * no method reads a value back. Refused when this process has no key to seal it with.
   */
  'secrets.set': (args: { name: string; value: string }) => SecretView[]
  'secrets.delete': (args: { name: string }) => SecretView[]
}

export interface ApiEvents {
  /** A run was created or changed state; clients refresh what they show of it. */
  'run.changed': { runId: number }
  /** New log lines were stored (any run). */
  'log.appended': { runId: number; lastSeq: number }
  /** A node's state changed or it answered a probe; carries the node as `farm.nodes` shows it. */
  'node.changed': NodeLiveView
  /** The farm file was written back (or reloaded); clients take `farm.nodes` again. */
  'farm.changed': { file: string | null }
  /** What waits changed (a trigger, a start, a reason); clients take `queue.list` again. */
  'queue.changed': Record<string, never>
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
  'farm.probe',
  'farm.editNode',
  'farm.reload',
  'node.series',
  'node.events',
  'node.test',
  'node.admin',
  'node.containers',
  'node.images',
  'node.prune',
  'node.copyImage',
  'node.hostKey',
  'node.trust',
  'runs.trigger',
  'runs.cancel',
  'jobs.cancel',
  'runs.rerun',
  'queue.list',
  'queue.setPriority',
  'queue.remove',
  'workflows.list',
  'workflows.addFolder',
  'workflows.removeFolder',
  'secrets.list',
  'secrets.set',
  'secrets.delete',
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
