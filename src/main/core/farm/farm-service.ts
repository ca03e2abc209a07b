/**
 * The farm as one long-lived process (the UI: `serve`, Electron) holds it: the Farm (replaced when
 * its file is edited), one NodeSessions on the process's SSH pool, the health monitor recording
 * into the history, and the node operations the CLI offers one by one (test, containers, images,
 * prune, copy an image, host keys, drain/cordon/resume, probe).
 *
 * Every change of a node's state and every new health sample is announced as `node.changed`
 * with the node as `farm.nodes` shows it (NodeLiveView); what happens in one turn of the event
 * loop (a probe that moves the state and brings a sample) is announced once. A farm file written
 * back is announced as `farm.changed`.
 */
import type { ApiEvents } from '../../../shared/api'
import type {
  ConnectionTestView,
  ContainerView,
  HealthSample,
  HostKeyView,
  ImageCopyView,
  ImageView,
  NodeEdit,
  NodeEventRecord,
  NodeLiveView,
  NodeStatusView,
  PruneReport,
  Series,
} from '../../../shared/model'
import { NodeSessions, withTimeout, type ConnectedNode } from '../executor/node-sessions'
import type { NodeMetricsStore } from '../store/node-metrics-store'
import { suggest } from '../source/yaml-source'
import { testConnection } from './connection-test'
import { localDocker } from '../transport/docker-over-ssh'
import { editNodeInFarmFile } from './farm-file-edit'
import { loadFarmFile } from './farm-file'
import { isLocal, type Farm, type FarmNode } from './farm-model'
import { probeFarm } from './farm-status'
import { HealthMonitor, type HealthMonitorOptions } from './health/health-monitor'
import { hostKeyView, HostTrust, scanHostKey, trustHostKey } from '../transport/host-trust'
import { copyImage, type CopyProgress, type NamedEngine } from './image-transfer'
import type { AdminCommand } from './node-admin'
import {
  engineOf,
  ensureImage,
  listContainers,
  listImages,
  NoEngineError,
  pruneNode,
  type EnsureImageOutcome,
} from './node-operations'
import { canTakeNewJobs, describeNodeState, type NodeState } from './health/node-state'
import type { SshPool } from '../transport/ssh-pool'

/** A name that is not a node of the farm: says which farm, suggests one, lists them all. */
export class UnknownNodeError extends Error {
  constructor(farm: Pick<Farm, 'file' | 'nodes'>, name: string) {
    const names = farm.nodes.map((n) => n.name)
    const guess = suggest(name, names)
    super(
      `there is no node "${name}" in ${farm.file ?? 'the default farm (this machine)'}` +
        (guess ? `; did you mean "${guess}"?` : '.') +
        ` Nodes: ${names.join(', ')}`,
    )
    this.name = 'UnknownNodeError'
  }
}

export function findFarmNode(farm: Pick<Farm, 'file' | 'nodes'>, name: string): FarmNode {
  const node = farm.nodes.find((n) => n.name === name)
  if (!node) throw new UnknownNodeError(farm, name)
  return node
}

/** Asked of this machine (host: local), which is reached without SSH. */
export class LocalNodeError extends Error {
  constructor(node: FarmNode, what: string) {
    super(`${node.name} is this machine (host: local): it is reached without SSH and has ${what}`)
    this.name = 'LocalNodeError'
  }
}

/** The name a copy source takes for this machine's own engine, when no farm node is called that. */
export const LOCAL_ENGINE = 'local'

/** A copy source that cannot be: the target itself, a name that is neither a node nor `local`. */
export class CopySourceError extends Error {
  override name = 'CopySourceError'
}

/** This machine's Docker engine (DOCKER_HOST, else /var/run/docker.sock), once it answers. */
export async function openLocalEngine(): Promise<NamedEngine> {
  const docker = localDocker()
  try {
    await withTimeout(docker.ping(), 5000, 'no answer within 5000 ms')
  } catch (e) {
    throw new Error(
      `no Docker engine answers on this machine (${process.env.DOCKER_HOST || 'unix:///var/run/docker.sock'}): ` +
        `${(e as Error).message}. Start Docker here, or copy from a node of the farm.`,
    )
  }
  return { name: LOCAL_ENGINE, docker }
}

/**
 * Copies `image` to `target` from `from` (a node of the farm, or `local` for this machine's engine
 * unless a node has that name) by save | load, both ends opened at once.
 */
export async function copyImageFrom(
  farm: Farm,
  target: FarmNode,
  image: string,
  from: string,
  open: (node: FarmNode) => Promise<ConnectedNode>,
  opts: { onProgress?: (p: CopyProgress) => void; signal?: AbortSignal } = {},
): Promise<ImageCopyView> {
  if (from === target.name)
    throw new CopySourceError(`${from} is the node the image is copied to; copy it from another node`)
  const fromNode = farm.nodes.find((n) => n.name === from)
  if (!fromNode && from !== LOCAL_ENGINE) {
    const names = farm.nodes.map((n) => n.name)
    const guess = suggest(from, [...names, LOCAL_ENGINE])
    throw new CopySourceError(
      `there is no node "${from}" to copy from${guess ? `; did you mean "${guess}"?` : '.'} ` +
        `Use a node of the farm (${names.join(', ')}) or ${LOCAL_ENGINE} for this machine's engine.`,
    )
  }
  if (target.executor === 'shell') throw new NoEngineError(target, 'copy images to')
  if (fromNode?.executor === 'shell') throw new NoEngineError(fromNode, 'copy images from')
  // Both ends at once: the slower handshake sets the wait, not the sum.
  const [to, source] = await Promise.all([
    open(target).then((h): NamedEngine => ({ name: target.name, docker: engineOf(h, 'copy images to') })),
    fromNode
      ? open(fromNode).then((h): NamedEngine => ({
          name: fromNode.name,
          docker: engineOf(h, 'copy images from'),
        }))
      : openLocalEngine(),
  ])
  return copyImage(source, to, image, opts)
}

/** The key a node's sshd offers (through its jump host's connection), without trusting it. */
export async function scanNodeHostKey(
  node: FarmNode,
  trust: HostTrust,
  sessions: NodeSessions,
): Promise<Buffer> {
  if (isLocal(node)) throw new LocalNodeError(node, 'no host key')
  return scanHostKey(node, { sock: await sessions.tunnel(node), known: trust.keysFor(node.host, node.port) })
}

/** `user@host:port` (with ` via <jump>`), or `this machine`. */
export function nodeAddress(node: FarmNode): string {
  return isLocal(node)
    ? 'this machine'
    : `${node.user}@${node.host}:${node.port}${node.jump ? ` via ${node.jump}` : ''}`
}

/** A node as the console shows it: declared, its state, its latest sample (pure). */
export function liveView(node: FarmNode, state: NodeState, sample: HealthSample | null): NodeLiveView {
  const h = state.health
  const a = state.admin
  return {
    name: node.name,
    host: node.host,
    executor: node.executor,
    labels: node.labels,
    slots: node.slots,
    address: nodeAddress(node),
    health: h.kind,
    healthSince: h.since,
    healthReasons: h.kind === 'degraded' ? h.reasons : h.kind === 'online' ? [] : [h.reason],
    unreachableCause: h.kind === 'unreachable' ? h.cause : null,
    admin: a.kind,
    adminSince: a.kind === 'active' ? null : a.since,
    adminReason: a.kind === 'active' ? null : a.reason,
    description: describeNodeState(state),
    canTakeNewJobs: canTakeNewJobs(state),
    defaultImage: node.defaultImage,
    infraFailures: state.infraFailures,
    sample,
    source: node.source ? { file: node.source.file, line: node.source.line } : null,
  }
}

export type FarmEventName = 'node.changed' | 'farm.changed'
export type FarmListener = <E extends FarmEventName>(event: E, payload: ApiEvents[E]) => void

export interface FarmServiceOptions {
  /** Yardmaster's data dir: its known_hosts (trust on first use) is read and written. */
  dataDir: string
  /** The history: samples, events, admin states. */
  metrics: NodeMetricsStore
  /** Record the host key of a host no known_hosts knows yet (--accept-new-host-keys). @default false */
  acceptNewHostKeys?: boolean
  /** @default defaultSshPool(), the process's */
  pool?: SshPool
  /** Monitor timings, and health limits under the farm file's `health:` (the recorder is `metrics`). */
  monitor?: Omit<HealthMonitorOptions, 'recorder'>
  /** Connect timeout of the pooled sessions; about the monitor's probe limit. @default 4000 */
  timeoutMs?: number
  /** How the sessions are made (tests give fakes). @default new NodeSessions(farm, …) */
  openSessions?: (farm: Farm) => NodeSessions
  now?: () => number
}

/** The monitor and the sessions it probes through; replaced together when the farm's connections change. */
interface Watch {
  sessions: NodeSessions
  monitor: HealthMonitor
  detach: () => void
}

export class FarmService {
  private current: Farm
  private watch: Watch
  private running = false
  private stopped = false
  private readonly listeners = new Set<FarmListener>()
  private readonly dirty = new Set<string>()
  private editing: Promise<unknown> = Promise.resolve()
  private readonly now: () => number

  constructor(
    farm: Farm,
    private readonly opts: FarmServiceOptions,
  ) {
    this.current = farm
    this.now = opts.now ?? Date.now
    this.watch = this.makeWatch(farm)
  }

  get farm(): Farm {
    return this.current
  }

  /** The pooled sessions of the farm now: runs use them as the monitor does. */
  get sessions(): NodeSessions {
    return this.watch.sessions
  }

  /** Starts the health monitor: every node probed at once, then on its interval. */
  start(): void {
    if (this.stopped) return
    this.running = true
    this.watch.monitor.start()
  }

  /** Stops the monitor (waiting for probes under way) and gives the connections back. */
  async stop(): Promise<void> {
    this.stopped = true
    this.running = false
    await this.editing.catch(() => {})
    await this.retire(this.watch)
    this.listeners.clear()
  }

  subscribe(listener: FarmListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Throws UnknownNodeError (with the names there are) for a name not in the farm. */
  node(name: string): FarmNode {
    return findFarmNode(this.current, name)
  }

  /** Every node, in farm-file order, with its live state and latest sample. */
  nodes(): NodeLiveView[] {
    return this.current.nodes.map((n) => this.viewOf(n))
  }

  view(name: string): NodeLiveView {
    return this.viewOf(this.node(name))
  }

  /** Probes now (one node, or all at once): facts and capabilities, or why not. */
  async probe(name?: string, signal?: AbortSignal): Promise<NodeStatusView[]> {
    const farm = name === undefined ? this.current : { ...this.current, nodes: [this.node(name)] }
    const { sessions } = this.watch
    return probeFarm(farm, (n) => sessions.open(n), { signal })
  }

  series(name: string, from: number): Series {
    const node = this.node(name)
    const now = this.now()
    return this.opts.metrics.series(node.name, from, now, now)
  }

  /** State changes, newest first: of one node, or of all. */
  events(name: string | null, limit: number): NodeEventRecord[] {
    return this.opts.metrics.events(name === null ? null : this.node(name).name, limit)
  }

  /** A fresh connection, timed: handshake, first engine request, round trips. */
  async test(name: string): Promise<ConnectionTestView> {
    const node = this.node(name)
    // Behind a jump host, the fresh connection rides the jump host's pooled one.
    return this.withOwnSessions((sessions) =>
      testConnection(node, this.trustFor(this.opts.acceptNewHostKeys ?? false), {
        tunnel: () => sessions.tunnel(node),
      }),
    )
  }

  /** Drain, cordon or resume: in the history and in the monitor at once, announced; illegal moves refused. */
  admin(name: string, action: 'drain' | 'cordon' | 'resume', reason: string | null = null): NodeLiveView {
    const node = this.node(name)
    const at = this.now()
    const command: AdminCommand = action === 'resume' ? { type: 'resume', at } : { type: action, at, reason }
    const r = this.watch.monitor.apply(node.name, command)
    if (!r.ok) throw new AdminRefusedError(`cannot ${action} ${node.name}: ${r.error}`)
    this.changed(node.name)
    return this.viewOf(node)
  }

  containers(name: string): Promise<ContainerView[]> {
    return this.onEngine(name, 'list containers of', listContainers)
  }

  images(name: string): Promise<ImageView[]> {
    return this.onEngine(name, 'list images of', listImages)
  }

  prune(name: string): Promise<PruneReport> {
    return this.onEngine(name, 'prune', (h) => pruneNode(h))
  }

  async copyImage(
    name: string,
    image: string,
    from: string,
    opts: { onProgress?: (p: CopyProgress) => void; signal?: AbortSignal } = {},
  ): Promise<ImageCopyView> {
    const { sessions } = this.watch
    return copyImageFrom(this.current, this.node(name), image, from, (n) => sessions.open(n), opts)
  }

  /** What a job needs: the image there, pulled, or copied from another docker node that has it. */
  async ensureImage(name: string, image: string, signal?: AbortSignal): Promise<EnsureImageOutcome> {
    const node = this.node(name)
    const { sessions } = this.watch
    const target = await sessions.open(node)
    const others = this.current.nodes.filter((n) => n !== node && n.executor === 'docker')
    const opened = await Promise.allSettled(others.map((n) => sessions.open(n)))
    const sources = opened.flatMap((o, i) =>
      o.status === 'fulfilled' && o.value.docker ? [{ name: others[i]!.name, docker: o.value.docker }] : [],
    )
    return ensureImage(target, image, { sources, signal })
  }

  /** The key the node offers now and what the known_hosts files say of it. */
  hostKey(name: string): Promise<HostKeyView> {
    const node = this.node(name)
    const trust = this.trustFor(false)
    return this.withOwnSessions(async (sessions) =>
      hostKeyView(node, trust, await scanNodeHostKey(node, trust, sessions)),
    )
  }

  /**
   * Trust on first use: records the key the node offers if it is still the one the user saw and
   * no known_hosts knows the host; a changed or revoked key is refused and never overwritten.
   * The monitor probes the node again within a second, with the key trusted.
   */
  async trust(name: string, fingerprint: string): Promise<HostKeyView> {
    const node = this.node(name)
    const trust = this.trustFor(false)
    const view = await this.withOwnSessions(async (sessions) =>
      trustHostKey(node, trust, await scanNodeHostKey(node, trust, sessions), fingerprint),
    )
    if (view.recorded) this.watch.monitor.probeSoon(node.name)
    return view
  }

  /**
   * Changes a node's declared fields in the farm file (comments and layout kept) and takes the
   * farm as written; refused for the embedded default or a file changed on disk since.
   * Edits are done one at a time.
   */
  editNode(name: string, edit: NodeEdit): Promise<NodeLiveView> {
    return this.oneAtATime(async () => {
      const node = this.node(name)
      await this.replaceFarm(editNodeInFarmFile(this.current, node.name, edit))
      return this.view(node.name)
    })
  }

  /**
   * Reads the farm file again, as a user who edited it elsewhere expects; a file that no longer
   * parses throws its problems (file:line:col) and the farm stays as it was.
   */
  reload(): Promise<NodeLiveView[]> {
    return this.oneAtATime(async () => {
      const file = this.current.file
      if (file === null)
        throw new Error('this is the built-in farm (this machine alone): there is no farm file to read again')
      await this.replaceFarm(loadFarmFile(file))
      return this.nodes()
    })
  }

  /** Edits and reloads of the farm file, one after the other (a failed one does not stop the next). */
  private oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = this.editing.then(work)
    this.editing = run.catch(() => {})
    return run
  }

  /**
   * Takes another farm (its file was written back or reloaded). When every node is reached as
   * before (same names, addresses, users, keys, executors, jump hosts, known_hosts), the monitor
   * and its connections go on, judging the nodes by the new farm's health limits; otherwise a new
   * monitor takes over, on the same pool.
   */
  async replaceFarm(next: Farm): Promise<void> {
    const before = this.current
    this.current = next
    if (!sameConnections(before, next)) {
      const old = this.watch
      this.watch = this.makeWatch(next)
      if (this.running) this.watch.monitor.start()
      // The new sessions hold their leases before the old ones give theirs back: connections stay.
      await this.retire(old)
    } else {
      // The same monitor goes on, with the nodes as now declared (their health limits too).
      this.watch.monitor.useFarm(next)
    }
    this.emit('farm.changed', { file: next.file })
    for (const n of next.nodes) this.changed(n.name)
  }

  /** The farm's, the user's and the data dir's known_hosts, read afresh on every check. */
  private trustFor(acceptNew: boolean): HostTrust {
    return HostTrust.forFarm(this.current, { dataDir: this.opts.dataDir, acceptNew })
  }

  private makeWatch(farm: Farm): Watch {
    const sessions =
      this.opts.openSessions?.(farm) ??
      new NodeSessions(farm, {
        dataDir: this.opts.dataDir,
        acceptNewHostKeys: this.opts.acceptNewHostKeys,
        timeoutMs: this.opts.timeoutMs ?? 4000,
        pool: this.opts.pool,
      })
    const monitor = new HealthMonitor(farm, sessions, { ...this.opts.monitor, recorder: this.opts.metrics })
    const offState = monitor.subscribe((e) => this.changed(e.node))
    const offSample = monitor.onSample((node) => this.changed(node))
    return {
      sessions,
      monitor,
      detach: () => {
        offState()
        offSample()
      },
    }
  }

  private async retire(w: Watch): Promise<void> {
    w.detach()
    await w.monitor.stop()
    await w.sessions.closeAll()
  }

  /** A session of its own for one operation (a jump channel is given back at once). */
  private async withOwnSessions<T>(work: (sessions: NodeSessions) => Promise<T>): Promise<T> {
    const sessions = new NodeSessions(this.current, {
      dataDir: this.opts.dataDir,
      acceptNewHostKeys: this.opts.acceptNewHostKeys,
      pool: this.opts.pool,
    })
    try {
      return await work(sessions)
    } finally {
      await sessions.closeAll()
    }
  }

  private async onEngine<T>(name: string, what: string, work: (h: ConnectedNode) => Promise<T>): Promise<T> {
    const node = this.node(name)
    if (node.executor === 'shell') throw new NoEngineError(node, what)
    return work(await this.watch.sessions.open(node))
  }

  private viewOf(node: FarmNode): NodeLiveView {
    const { monitor } = this.watch
    const state = monitor.stateOf(node.name)
    if (!state) throw new UnknownNodeError(this.current, node.name)
    return liveView(node, state, monitor.lastSample(node.name))
  }

  /** Announces the node once for everything that happened to it in this turn of the event loop. */
  private changed(name: string): void {
    if (this.dirty.has(name)) return
    this.dirty.add(name)
    queueMicrotask(() => {
      this.dirty.delete(name)
      const node = this.current.nodes.find((n) => n.name === name)
      if (node && this.watch.monitor.stateOf(name)) this.emit('node.changed', this.viewOf(node))
    })
  }

  private emit<E extends FarmEventName>(event: E, payload: ApiEvents[E]): void {
    for (const l of this.listeners) l(event, payload)
  }
}

/** drain, cordon or resume refused by the node state machine (resume an active node, drain a draining one). */
export class AdminRefusedError extends Error {
  override name = 'AdminRefusedError'
}

/** Would every node be reached exactly as before? */
export function sameConnections(a: Farm, b: Farm): boolean {
  if (a.knownHosts !== b.knownHosts || a.nodes.length !== b.nodes.length) return false
  return a.nodes.every((x, i) => {
    const y = b.nodes[i]!
    return (
      x.name === y.name &&
      x.host === y.host &&
      x.port === y.port &&
      x.user === y.user &&
      x.identityFile === y.identityFile &&
      x.executor === y.executor &&
      (x.jump ?? null) === (y.jump ?? null)
    )
  })
}
