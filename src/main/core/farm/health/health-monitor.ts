/**
 * The health monitor: every few seconds, each node is probed over its pooled connection
 * (health-probe.ts), its state moved (node-state.ts), every change announced to subscribers (the
 * UI, the CLI) and written to the history with the sample (NodeMetricsStore). Admin states are
 * read from the history on every round, so `yardmaster node <n> drain` in another process takes
 * effect here within one interval.
 *
 * Nodes are probed independently: a node that does not answer costs its own probe (at most
 * `probeTimeoutMs`, then nothing once its connection's breaker is open), never the others'. An
 * unreachable node is detected within `intervalMs + probeTimeoutMs` (9 s by default).
 */
import type { NodeSessions, ConnectedNode } from '../../executor/node-sessions'
import type { Farm, FarmNode } from '../farm-model'
import {
  causeOf,
  DEFAULT_THRESHOLDS,
  probeHealth,
  thresholdsFor,
  timeoutSignal,
  type CpuTimes,
  type HealthSample,
  type HealthThresholds,
} from './health-probe'
import { askEngine } from '../node-handle'
import { applyAdminCommand, type AdminCommand, type NodeLedger } from '../node-admin'
import {
  canTakeNewJobs,
  DEFAULT_NODE_POLICY,
  describeNodeState,
  initialNodeState,
  nodeTransition,
  type AdminState,
  type HealthKind,
  type NodeEvent,
  type NodeState,
  type NodeStatePolicy,
  type UnreachableCause,
} from './node-state'

/** Where the monitor keeps what it learns; NodeMetricsStore is one. */
export interface HealthRecorder extends NodeLedger {
  addSample(node: string, state: HealthKind, sample: HealthSample): void
  addMiss(node: string, state: HealthKind, at: number): void
  compact(now: number): unknown
}

/** `node.stateChanged`: one per change of a node's health or admin state. */
export interface NodeStateChanged {
  node: string
  at: number
  kind: 'health' | 'admin'
  from: NodeState
  to: NodeState
  /** The new state in words: `unreachable (no answer within 4000 ms)`, `online, draining: …` */
  description: string
}

export interface HealthMonitorOptions {
  /** Between two probes of a node. @default 5000 */
  intervalMs?: number
  /** A probe that takes longer counts as failed. @default 4000 */
  probeTimeoutMs?: number
  /** Between two probes of an offline node. @default 30000 */
  offlineIntervalMs?: number
  /** Roll up and prune the series this often. @default 60000 */
  compactEveryMs?: number
  /**
   * The limits under the farm file's: a node is judged by its own `health:`, then the farm's,
   * then these. @default DEFAULT_THRESHOLDS
   */
  thresholds?: Partial<HealthThresholds>
  policy?: Partial<NodeStatePolicy>
  recorder?: HealthRecorder | null
  now?: () => number
}

interface Watched {
  node: FarmNode
  /** What the node is judged by (thresholdsFor). */
  thresholds: HealthThresholds
  state: NodeState
  probing: boolean
  lastProbe: number
  cpu: CpuTimes | null
  dataRoot: string | null | undefined
}

export class HealthMonitor {
  private readonly watched = new Map<string, Watched>()
  private readonly listeners = new Set<(e: NodeStateChanged) => void>()
  /** The latest sample of each node that answered, and who wants each new one. */
  private readonly samples = new Map<string, HealthSample>()
  private readonly sampleListeners = new Set<(node: string, sample: HealthSample) => void>()
  private timer: NodeJS.Timeout | null = null
  private lastCompact = 0
  private readonly policy: NodeStatePolicy
  private readonly now: () => number
  private stopped = false
  private readonly inFlight = new Set<Promise<void>>()

  /**
   * @param sessions opens nodes; its pool is the process's, so the monitor holds one lease per
   *   node and uses the same connections as everything else. Its timeoutMs should be about
   *   probeTimeoutMs, so opening a node that hangs does not outlast a probe.
   */
  constructor(
    farm: Farm,
    private readonly sessions: NodeSessions,
    private readonly opts: HealthMonitorOptions = {},
  ) {
    this.policy = { ...DEFAULT_NODE_POLICY, ...opts.policy }
    this.now = opts.now ?? Date.now
    const admin = opts.recorder?.adminStates() ?? new Map<string, AdminState>()
    const failures = opts.recorder?.infraFailures() ?? new Map<string, number>()
    for (const node of farm.nodes)
      this.watched.set(node.name, {
        node,
        thresholds: this.thresholdsOf(farm, node),
        state: {
          ...initialNodeState(this.now(), admin.get(node.name)),
          infraFailures: failures.get(node.name) ?? 0,
        },
        probing: false,
        lastProbe: 0,
        cpu: null,
        dataRoot: undefined,
      })
  }

  /** Starts probing: every node at once, then each on its interval. */
  start(): void {
    if (this.timer || this.stopped) return
    const tick = () => void this.round()
    tick()
    // The tick runs often; each node is probed on its own interval, whatever the others do.
    this.timer = setInterval(tick, Math.min(1000, this.opts.intervalMs ?? 5000))
    this.timer.unref?.()
  }

  /** Stops probing and waits for probes under way; the sessions are the caller's to close. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await Promise.allSettled([...this.inFlight])
  }

  /** Node name -> state, now. */
  states(): Map<string, NodeState> {
    return new Map([...this.watched].map(([name, w]) => [name, w.state]))
  }

  stateOf(name: string): NodeState | null {
    return this.watched.get(name)?.state ?? null
  }

  canTakeNewJobs(name: string): boolean {
    const s = this.stateOf(name)
    return s !== null && canTakeNewJobs(s)
  }

  subscribe(listener: (e: NodeStateChanged) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The node's latest sample that answered; null until one did. */
  lastSample(name: string): HealthSample | null {
    return this.samples.get(name) ?? null
  }

  /**
   * Takes a farm whose nodes are reached as before (the farm file was edited or read again, and
   * `sameConnections` holds): their declared fields and health limits count from the next probe.
   * Nodes it does not have are left as they are.
   */
  useFarm(farm: Farm): void {
    for (const node of farm.nodes) {
      const w = this.watched.get(node.name)
      if (w) Object.assign(w, { node, thresholds: this.thresholdsOf(farm, node) })
    }
  }

  /** The limits the node is judged by now. */
  thresholds(name: string): HealthThresholds | null {
    return this.watched.get(name)?.thresholds ?? null
  }

  /** Probes the node at the next tick (within a second) rather than at its interval: its host key was just trusted. */
  probeSoon(name: string): void {
    const w = this.watched.get(name)
    if (w) w.lastProbe = 0
  }

  /** Called with every new sample, after the state it led to is taken (and announced). */
  onSample(listener: (node: string, sample: HealthSample) => void): () => void {
    this.sampleListeners.add(listener)
    return () => this.sampleListeners.delete(listener)
  }

  /** Probes every node that is due, at once; resolves when those probes are done. */
  async round(): Promise<void> {
    if (this.stopped) return
    const now = this.now()
    this.syncAdmin(now)
    const due = [...this.watched.values()].filter(
      (w) => !w.probing && now - w.lastProbe >= this.intervalFor(w),
    )
    const work = due.map((w) => this.probe(w))
    if (this.opts.recorder && now - this.lastCompact >= (this.opts.compactEveryMs ?? 60_000)) {
      this.lastCompact = now
      this.opts.recorder.compact(now)
    }
    await Promise.allSettled(work)
  }

  /**
   * Drain, cordon or resume from this process (the API): written to the history like the CLI's,
   * then taken and announced at once instead of on the next round.
   */
  apply(name: string, command: AdminCommand): { ok: true } | { ok: false; error: string } {
    const w = this.watched.get(name)
    if (!w) return { ok: false, error: `no node "${name}" in this farm` }
    if (!this.opts.recorder) {
      const r = this.move(w, command)
      return r.ok ? { ok: true } : { ok: false, error: r.error }
    }
    const r = applyAdminCommand(this.opts.recorder, name, command)
    if (!r.ok) return { ok: false, error: r.error }
    this.syncAdmin(command.at)
    return { ok: true }
  }

  private thresholdsOf(farm: Farm, node: FarmNode): HealthThresholds {
    return thresholdsFor(farm, node, { ...DEFAULT_THRESHOLDS, ...this.opts.thresholds })
  }

  private intervalFor(w: Watched): number {
    return w.state.health.kind === 'offline' && w.lastProbe > 0
      ? (this.opts.offlineIntervalMs ?? 30_000)
      : (this.opts.intervalMs ?? 5000)
  }

  private probe(w: Watched): Promise<void> {
    w.probing = true
    w.lastProbe = this.now()
    const p = this.probeOnce(w).finally(() => {
      w.probing = false
      this.inFlight.delete(p)
    })
    this.inFlight.add(p)
    return p
  }

  private async probeOnce(w: Watched): Promise<void> {
    const timeoutMs = this.opts.probeTimeoutMs ?? 4000
    const at = this.now()
    let handle: ConnectedNode
    try {
      handle = await withLimit(this.sessions.open(w.node), timeoutMs)
    } catch (e) {
      return this.failed(w, at, causeOf(e as Error), (e as Error).message)
    }
    if (this.stopped) return
    if (w.dataRoot === undefined && handle.docker) {
      // Once per monitor: where the engine keeps its data, to watch that disk too.
      const info = await askEngine<{ DockerRootDir?: string }>(
        handle.docker,
        'info',
        timeoutSignal(timeoutMs),
      ).catch(() => null)
      if (info) w.dataRoot = info.DockerRootDir ?? null
    }
    const r = await probeHealth(handle, {
      timeoutMs,
      dataRoot: w.dataRoot ?? null,
      previousCpu: w.cpu,
      thresholds: w.thresholds,
    })
    if (this.stopped) return
    if (!r.ok) return this.failed(w, at, r.cause, r.reason)
    w.cpu = r.cpu
    this.move(w, { type: 'probe-ok', at: r.sample.at, problems: r.problems })
    this.opts.recorder?.addSample(w.node.name, w.state.health.kind, r.sample)
    this.samples.set(w.node.name, r.sample)
    for (const l of this.sampleListeners) l(w.node.name, r.sample)
    // A draining node with none of our jobs left (containers, or shell workspaces) is drained;
    // only a sample taken after the drain began can tell (a job may have started meanwhile).
    const admin = w.state.admin
    if (admin.kind === 'draining' && r.sample.containersOurs === 0 && r.sample.at >= admin.since)
      this.move(w, { type: 'drained', at: this.now() })
  }

  private failed(w: Watched, at: number, cause: UnreachableCause, reason: string): void {
    this.move(w, { type: 'probe-failed', at, cause, reason })
    const h = w.state.health
    if (h.kind === 'unreachable' && at - h.since >= this.policy.offlineAfterMs)
      this.move(w, { type: 'gone', at })
    this.opts.recorder?.addMiss(w.node.name, w.state.health.kind, at)
  }

  private move(w: Watched, event: NodeEvent) {
    const from = w.state
    const r = nodeTransition(from, event, this.policy)
    if (!r.ok) return r
    w.state = r.state
    if (!r.changed) return r
    const kind = from.admin.kind !== r.state.admin.kind ? 'admin' : 'health'
    if (kind === 'admin') this.opts.recorder?.setAdminState(w.node.name, r.state.admin)
    const change: NodeStateChanged = {
      node: w.node.name,
      at: 'at' in event ? event.at : this.now(),
      kind,
      from,
      to: r.state,
      description: describeNodeState(r.state),
    }
    this.opts.recorder?.addEvent({
      node: change.node,
      at: change.at,
      kind,
      from: kind === 'health' ? from.health.kind : from.admin.kind,
      to: kind === 'health' ? r.state.health.kind : r.state.admin.kind,
      reason: reasonOf(r.state, kind),
    })
    for (const l of this.listeners) l(change)
    return r
  }

  /**
   * Picks up what the history says was decided about the nodes: admin states (the CLI, the
   * API) and infrastructure failure counts (runs in any process, which may have quarantined a
   * node). Recorded by whoever changed them; announced here.
   */
  private syncAdmin(now: number): void {
    const recorder = this.opts.recorder
    if (!recorder) return
    const stored = recorder.adminStates()
    const failures = recorder.infraFailures()
    for (const w of this.watched.values()) {
      w.state = { ...w.state, infraFailures: failures.get(w.node.name) ?? 0 }
      const want = stored.get(w.node.name) ?? { kind: 'active' as const }
      if (want.kind === w.state.admin.kind) continue
      const from = w.state
      w.state = { ...w.state, admin: want }
      const change: NodeStateChanged = {
        node: w.node.name,
        at: now,
        kind: 'admin',
        from,
        to: w.state,
        description: describeNodeState(w.state),
      }
      for (const l of this.listeners) l(change)
    }
  }
}

function reasonOf(s: NodeState, kind: 'health' | 'admin'): string | null {
  if (kind === 'health') {
    const h = s.health
    if (h.kind === 'degraded') return h.reasons.join('; ')
    if (h.kind === 'unreachable') return `${h.cause}: ${h.reason}`
    if (h.kind === 'offline') return h.reason
    return null
  }
  const a = s.admin
  return 'reason' in a ? a.reason : null
}

function withLimit<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
