/**
 * The connection pool: one SSH connection per node for the whole process, shared by every user
 * (runs, `nodes`, node operations, the health monitor), kept alive, reconnected with backoff and
 * guarded by a circuit breaker (link-breaker.ts), so a node that does not answer costs its
 * requests nothing more than an immediate error once its breaker is open, and costs the other
 * nodes nothing at all.
 *
 * Users take a lease (`lease(target)`); while a link has users, the pool reconnects it on its own
 * after a drop; when the last user lets go, the connection is closed after `idleMs`. Commands and
 * Docker requests go through `lease.exec`, a stand-in for the ssh2 Client that always uses the
 * current connection, so a reconnection is invisible to them (a request in flight when the
 * connection drops fails, as it would anyway).
 */
import type Docker from 'dockerode'
import { finished, Stream, type Duplex } from 'node:stream'
import type { Client, ClientChannel } from 'ssh2'
import { dockerOverSsh } from './docker-over-ssh'
import { NodeUnreachableError } from '../farm/farm-errors'
import { describeNode, type FarmNode } from '../farm/farm-model'
import type { HostKeyChecker } from './known-hosts'
import { SessionBudget } from './session-budget'
import {
  admit,
  DEFAULT_POLICY,
  linkTransition,
  retryTime,
  type Admission,
  type BreakerPolicy,
  type LinkEvent,
  type LinkState,
} from './link-breaker'
import { connectSsh, forwardTo, type SshConnectOptions } from './ssh-connection'

/** What to connect to: a node, the link carrying it (behind a jump host), and how to check its key. */
export interface LinkTarget {
  node: FarmNode
  via: LinkTarget | null
  hostKeys: HostKeyChecker
  /** Handshake limit for this node. @default the pool's timeoutMs */
  timeoutMs?: number
}

export interface SshPoolOptions {
  policy?: Partial<BreakerPolicy>
  /** SSH handshake limit. @default 10000 */
  timeoutMs?: number
  /** Keepalive probe interval (ssh-connection: a node silent for 4 intervals is gone). @default 3000 */
  keepaliveMs?: number
  /** How long a connection nobody uses stays open. @default 0 */
  idleMs?: number
  /** For tests: how connections and jump channels are made. */
  connect?: (node: FarmNode, hostKeys: HostKeyChecker, opts: SshConnectOptions) => Promise<Client>
  forward?: (jump: Client, jumpName: string, node: FarmNode, timeoutMs: number) => Promise<Duplex>
  now?: () => number
  random?: () => number
}

export interface SshLease {
  readonly key: string
  readonly node: FarmNode
  /** The connection right now; null while there is none (before the first, between a drop and the next). */
  readonly client: Client | null
  /** The connection, opened or reopened if needed; rejects at once while the breaker is open. */
  acquire(): Promise<Client>
  /**
   * Stands in for the ssh2 Client where only `exec` is used (SshCommandRunner, the Docker
   * dial-stdio agent): each exec goes to the current connection, reconnecting first if needed.
   */
  readonly exec: Client
  /** The node's engine over this link; one per link, so its channel limit holds for all users. */
  docker(): Docker
  /** Gives the lease back (once; later calls do nothing). */
  release(): void
}

export interface LinkChange {
  key: string
  node: FarmNode
  from: LinkState
  to: LinkState
}

/** Thrown instead of waiting while a node's breaker is open. */
export class NodeUnavailableError extends NodeUnreachableError {
  constructor(
    node: FarmNode,
    readonly admission: Extract<Admission, { kind: 'refuse' }>,
    lastError: Error | null,
    now: number,
  ) {
    const last =
      lastError instanceof NodeUnreachableError
        ? lastError.reason
        : (lastError?.message ?? admission.lastError)
    const wait = Math.max(0, Math.ceil((admission.retryAt - now) / 1000))
    super(
      node,
      `${last} (${admission.failures} attempt${admission.failures === 1 ? '' : 's'} in a row failed, ` +
        `unreachable for ${Math.round((now - admission.downSince) / 1000)} s; ` +
        (wait > 0
          ? `the next attempt is in ${wait} s, and until then requests fail at once)`
          : 'a new attempt is under way)'),
    )
    this.name = 'NodeUnavailableError'
  }
}

interface Link {
  key: string
  target: LinkTarget
  state: LinkState
  client: Client | null
  lastError: Error | null
  attempt: Promise<Client> | null
  users: number
  retryTimer: NodeJS.Timeout | null
  idleTimer: NodeJS.Timeout | null
  /** The jump host's link, held while this one is up. */
  jumpLease: SshLease | null
  docker: Docker | null
  /**
   * More connections to the same node, opened while every session of the others is in use (a
   * node running more streaming steps than one connection has sessions); closed when idle, and
   * with the link's own connection.
   */
  extras: Client[]
  /** An extra connection being opened (one at a time). */
  growing: Promise<Client | null> | null
  /** When opening an extra connection last failed: none is tried again for a while. */
  growFailedAt: number | null
  /** Sessions waiting for any of the link's connections to have one free, first come first. */
  waiters: Array<() => void>
}

/** Extra connections a link may open beside its own, so a node has up to 4 × MaxSessions sessions. */
export const MAX_EXTRA_CONNECTIONS = 3
/** How long an extra connection with no session open stays. */
const EXTRA_IDLE_MS = 30_000
/** How long after a failed extra connection the link only waits for sessions of the others. */
const EXTRA_RETRY_MS = 30_000

export class SshPool {
  private readonly links = new Map<string, Link>()
  private readonly listeners = new Set<(c: LinkChange) => void>()
  private readonly policy: BreakerPolicy
  private readonly now: () => number
  private readonly random: () => number

  constructor(private readonly opts: SshPoolOptions = {}) {
    this.policy = { ...DEFAULT_POLICY, ...opts.policy }
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
  }

  /** Takes a lease on the target's link (created on first use); connect with `acquire()`. */
  lease(target: LinkTarget): SshLease {
    const link = this.linkFor(target)
    // The same files are read either way; the newest user's policy (accept new keys or not,
    // the handshake limit) applies to the next attempt.
    link.target = target
    link.users++
    this.settle(link)
    let released = false
    const exec = execThrough(() => this.session(link))
    return {
      key: link.key,
      node: target.node,
      get client() {
        return link.client
      },
      acquire: () => this.acquire(link),
      exec,
      docker: () => (link.docker ??= dockerOverSsh(exec)),
      release: () => {
        if (released) return
        released = true
        link.users--
        this.settle(link)
      },
    }
  }

  /** The link's state, for status displays and the health monitor. */
  stateOf(target: LinkTarget): LinkState {
    return this.links.get(linkKey(target))?.state ?? { kind: 'idle' }
  }

  /** The reason the last attempt failed (while the link is not connected). */
  lastErrorOf(target: LinkTarget): Error | null {
    return this.links.get(linkKey(target))?.lastError ?? null
  }

  /** Listens to every state change of every link; returns the unsubscribe function. */
  subscribe(listener: (change: LinkChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Closes every connection and forgets every link (the end of the process, tests). */
  closeAll(): void {
    for (const link of this.links.values()) {
      this.clearTimers(link)
      link.users = 0
      this.hangUp(link)
    }
    this.links.clear()
  }

  private linkFor(target: LinkTarget): Link {
    const key = linkKey(target)
    let link = this.links.get(key)
    if (!link) {
      link = {
        key,
        target,
        state: { kind: 'idle' },
        client: null,
        lastError: null,
        attempt: null,
        users: 0,
        retryTimer: null,
        idleTimer: null,
        jumpLease: null,
        docker: null,
        extras: [],
        growing: null,
        growFailedAt: null,
        waiters: [],
      }
      this.links.set(key, link)
    }
    return link
  }

  /**
   * A session on one of the link's connections: its own first, then an extra one with a session
   * free; when all are full, a new extra connection (direct links only: behind a jump host every
   * extra would ride the jump host's connection anyway), else the wait for a session to end.
   */
  private async session(link: Link): Promise<{ client: Client; giveBack: () => void }> {
    for (;;) {
      const own = await this.acquire(link)
      const lanes = [own, ...link.extras]
      for (const client of lanes) {
        const giveBack = budgetOf(client).take()
        if (giveBack) return { client, giveBack: this.givingBack(link, client, giveBack) }
      }
      const mayGrow =
        !link.target.via &&
        link.extras.length < MAX_EXTRA_CONNECTIONS &&
        (link.growFailedAt === null || this.now() - link.growFailedAt >= EXTRA_RETRY_MS)
      if (mayGrow) {
        link.growing ??= this.openExtra(link, own).finally(() => (link.growing = null))
        // Opened or not, choose again: others may have been waiting for it too.
        if (await link.growing) continue
      }
      // Every connection full: wait for a session to end on any of them (or for the link to
      // change), then choose again.
      await new Promise<void>((resolve) => link.waiters.push(resolve))
    }
  }

  /** Wakes every waiting session: the link's connections changed, so each chooses again. */
  private wakeAll(link: Link): void {
    for (const wake of link.waiters.splice(0)) wake()
  }

  private async openExtra(link: Link, own: Client): Promise<Client | null> {
    const { node, hostKeys } = link.target
    try {
      const extra = await (this.opts.connect ?? connectSsh)(node, hostKeys, {
        timeoutMs: link.target.timeoutMs ?? this.opts.timeoutMs ?? 10_000,
        keepaliveMs: this.opts.keepaliveMs,
      })
      if (link.client !== own) {
        // The link's own connection went away meanwhile: the extra goes with it.
        extra.end()
        return null
      }
      extra.on('error', () => {})
      extra.once('close', () => {
        const i = link.extras.indexOf(extra)
        if (i >= 0) link.extras.splice(i, 1)
      })
      link.extras.push(extra)
      link.growFailedAt = null
      return extra
    } catch {
      link.growFailedAt = this.now()
      return null
    }
  }

  /**
   * The give-back of a session: the next waiting session goes; an extra connection left with none
   * open closes after a while.
   */
  private givingBack(link: Link, client: Client, giveBack: () => void): () => void {
    const extra = link.extras.includes(client)
    let given = false
    return () => {
      if (given) return
      given = true
      giveBack()
      link.waiters.shift()?.()
      if (!extra || budgetOf(client).open > 0) return
      unref(
        setTimeout(() => {
          const i = link.extras.indexOf(client)
          if (i >= 0 && budgetOf(client).open === 0) {
            link.extras.splice(i, 1)
            client.end()
          }
        }, EXTRA_IDLE_MS),
      )
    }
  }

  private acquire(link: Link): Promise<Client> {
    const now = this.now()
    const a = admit(link.state, now)
    switch (a.kind) {
      case 'use':
        return Promise.resolve(link.client!)
      case 'join':
        return link.attempt!
      case 'attempt':
        return this.attempt(link)
      case 'refuse':
        return Promise.reject(new NodeUnavailableError(link.target.node, a, link.lastError, now))
    }
  }

  private attempt(link: Link): Promise<Client> {
    this.move(link, { type: 'attempt', at: this.now() })
    const p = this.open(link)
    link.attempt = p
    p.then(
      (client) => {
        link.attempt = null
        link.client = client
        link.lastError = null
        let dropReason: string | null = null
        client.on('error', (e: Error) => (dropReason = e.message))
        client.once('close', () => this.dropped(link, client, dropReason))
        this.move(link, { type: 'succeeded', at: this.now() })
        this.settle(link)
      },
      (e: Error) => {
        link.attempt = null
        link.lastError = e
        link.jumpLease?.release()
        link.jumpLease = null
        this.move(link, {
          type: 'failed',
          at: this.now(),
          error: e.message,
          transient: e instanceof NodeUnreachableError,
          random: this.random(),
        })
        this.settle(link)
      },
    )
    return p
  }

  private async open(link: Link): Promise<Client> {
    const { node, via, hostKeys } = link.target
    const timeoutMs = link.target.timeoutMs ?? this.opts.timeoutMs ?? 10_000
    let sock: Duplex | undefined
    if (via) {
      // Behind a jump host: a channel of the jump host's own link, held as long as this one is up.
      const jump = this.lease(via)
      link.jumpLease = jump
      let carrier: Client
      try {
        carrier = await jump.acquire()
      } catch (e) {
        throw new NodeUnreachableError(
          node,
          `its jump host ${via.node.name} cannot be reached: ${(e as Error).message}`,
        )
      }
      sock = await (this.opts.forward ?? forwardTo)(carrier, via.node.name, node, timeoutMs)
    }
    return (this.opts.connect ?? connectSsh)(node, hostKeys, {
      timeoutMs,
      keepaliveMs: this.opts.keepaliveMs,
      sock,
    })
  }

  /**
   * Closes the link's connection on purpose. The link forgets it at once (its 'close' event comes
   * later and is then ignored), so a request right after opens a new one instead of using one
   * that is going away.
   */
  private hangUp(link: Link): void {
    const client = link.client
    if (!client || link.state.kind !== 'connected') return
    link.client = null
    // The engine's idle channels belong to this connection: the next user gets a fresh agent.
    link.docker = null
    this.move(link, { type: 'closed' })
    client.end()
    for (const extra of link.extras.splice(0)) extra.end()
    this.wakeAll(link)
    link.jumpLease?.release()
    link.jumpLease = null
  }

  private dropped(link: Link, client: Client, reason: string | null): void {
    if (link.client !== client) return
    link.client = null
    // The same node's other connections are as lost (and, kept, would keep steps on them going
    // where the run has given them up).
    for (const extra of link.extras.splice(0)) extra.end()
    this.wakeAll(link)
    link.jumpLease?.release()
    link.jumpLease = null
    const error = `the connection to ${describeNode(link.target.node)} dropped${reason ? `: ${reason}` : ''}`
    link.lastError = new NodeUnreachableError(link.target.node, error)
    this.move(link, { type: 'lost', at: this.now(), error, random: this.random() })
    this.settle(link)
  }

  /** After any change: retry on schedule while the link has users; close it once it has none. */
  private settle(link: Link): void {
    this.clearTimers(link)
    if (this.links.get(link.key) !== link) return
    if (link.users <= 0) {
      if (link.state.kind !== 'connected' || !link.client) return
      const close = () => {
        if (link.users <= 0) this.hangUp(link)
      }
      const idleMs = this.opts.idleMs ?? 0
      if (idleMs <= 0) close()
      else link.idleTimer = unref(setTimeout(close, idleMs))
      return
    }
    const at = retryTime(link.state)
    if (at === null || link.attempt) return
    link.retryTimer = unref(
      setTimeout(
        () => {
          link.retryTimer = null
          if (link.users <= 0 || link.attempt) return
          if (admit(link.state, this.now()).kind === 'attempt') this.attempt(link).catch(() => {})
          else this.settle(link)
        },
        Math.max(0, at - this.now()),
      ),
    )
  }

  private move(link: Link, event: LinkEvent): void {
    const from = link.state
    const to = linkTransition(from, event, this.policy)
    link.state = to
    for (const l of this.listeners) l({ key: link.key, node: link.target.node, from, to })
  }

  private clearTimers(link: Link): void {
    if (link.retryTimer) clearTimeout(link.retryTimer)
    if (link.idleTimer) clearTimeout(link.idleTimer)
    link.retryTimer = null
    link.idleTimer = null
  }
}

/**
 * Which connection a target is: the same user, address, key and host key checks share one;
 * behind a jump host, the jump host's link is part of it.
 */
export function linkKey(target: LinkTarget): string {
  const n = target.node
  const own = `${n.user}@${n.host}:${n.port} key=${n.identityFile ?? 'agent'} hostkeys=${checkerId(target.hostKeys)}`
  return target.via ? `${own} via ${linkKey(target.via)}` : own
}

const anonymous = new WeakMap<object, number>()
let nextAnonymous = 1
function checkerId(c: HostKeyChecker): string {
  if (c.id) return c.id
  let n = anonymous.get(c)
  if (n === undefined) anonymous.set(c, (n = nextAnonymous++))
  return `#${n}`
}

/** Each connection's sessions, counted so sshd's MaxSessions is never exceeded (session-budget.ts). */
const budgets = new WeakMap<Client, SessionBudget>()

function budgetOf(client: Client): SessionBudget {
  let budget = budgets.get(client)
  if (!budget) {
    const b = (budget = new SessionBudget())
    budgets.set(client, b)
    client.once('close', () => b.close())
  }
  return budget
}

/**
 * An object with ssh2's `exec` that runs it on a session `session` gives (on one of the link's
 * connections, once one is free); the session is given back when the channel closes.
 */
function execThrough(session: () => Promise<{ client: Client; giveBack: () => void }>): Client {
  type Callback = (err: Error | undefined, channel: ClientChannel) => void
  const exec = (command: string, a: unknown, b?: unknown) => {
    const cb = (typeof a === 'function' ? a : b) as Callback
    const options = typeof a === 'function' ? {} : (a as object)
    session()
      .then(({ client, giveBack }) => {
        try {
          client.exec(command, options, (err, channel) => {
            if (err) giveBack()
            else whenEnded(channel, giveBack)
            cb(err, channel)
          })
        } catch (e) {
          // ssh2 throws when the connection closed between acquire and exec.
          giveBack()
          throw e
        }
      })
      .catch((e: Error) => cb(e, undefined as never))
  }
  return { exec } as unknown as Client
}

/**
 * Calls `done` once a channel is over: closed, or ended both ways. ssh2 does not always say
 * 'close' (a destroyed channel is only finished); `done` may be called more than once.
 */
export function whenEnded(channel: Duplex, done: () => void): void {
  channel.once('close', done)
  if (channel instanceof Stream) finished(channel, done)
}

function unref<T extends NodeJS.Timeout>(t: T): T {
  t.unref?.()
  return t
}

let shared: SshPool | null = null

/** The process's pool: every NodeSessions uses it unless given another. */
export function defaultSshPool(): SshPool {
  return (shared ??= new SshPool())
}
