/**
 * Opens nodes for work: a lease on the node's pooled SSH connection (core/transport/ssh-pool: one per
 * node for the whole process, reconnected and guarded by a circuit breaker), or nothing for this
 * machine, with the executor that fits it. A node is opened once per NodeSessions and shared by
 * all its jobs; closeAll gives the leases back.
 */
import type { Duplex } from 'node:stream'
import { localDocker } from '../transport/docker-over-ssh'
import { EngineUnavailableError, NodeUnreachableError } from '../farm/farm-errors'
import { isLocal, jumpChain, type Farm, type FarmNode } from '../farm/farm-model'
import { HostTrust } from '../transport/host-trust'
import type { HostKeyChecker } from '../transport/known-hosts'
import type { NodeHandle } from '../farm/node-handle'
import { forwardTo } from '../transport/ssh-connection'
import {
  defaultSshPool,
  whenEnded,
  type LinkTarget,
  type SshLease,
  type SshPool,
} from '../transport/ssh-pool'
import { LocalCommandRunner, SshCommandRunner } from './command-runner'
import { DockerExecutor } from './docker-executor'
import type { NodeExecutor } from './job-environment'
import { ShellExecutor } from './shell-executor'

export interface NodeSession {
  node: FarmNode
  executor: NodeExecutor
  close(): void
}

/** What open() gives: the session for jobs, and its connection (NodeHandle) for node operations. */
export interface ConnectedNode extends NodeSession, NodeHandle {}

export interface NodeSessionOptions {
  /** SSH handshake and engine answer limit. @default 10000 */
  timeoutMs?: number
  /** Where Yardmaster's own known_hosts is (trust on first use); none: only the farm's and the user's. */
  dataDir?: string
  /** Record the host key of a host no known_hosts knows yet, instead of refusing it. @default false */
  acceptNewHostKeys?: boolean
  /** Host key checks; @default HostTrust.forFarm(farm, { dataDir, acceptNew: acceptNewHostKeys }) */
  hostKeys?: HostKeyChecker
  /** Where connections come from. @default defaultSshPool(), shared by the whole process */
  pool?: SshPool
}

export class NodeSessions {
  private readonly sessions = new Map<string, Promise<ConnectedNode>>()
  /** Leases taken for jump channels (`tunnel`), given back by closeAll. */
  private readonly extraLeases: SshLease[] = []
  private hostKeys: HostKeyChecker | null = null
  readonly pool: SshPool

  constructor(
    private readonly farm: Farm,
    private readonly opts: NodeSessionOptions = {},
  ) {
    this.pool = opts.pool ?? defaultSshPool()
  }

  /** Opens the node, or returns the session already open; rejects with a farm error. */
  open(node: FarmNode): Promise<ConnectedNode> {
    let s = this.sessions.get(node.name)
    if (!s) {
      s = this.connect(node)
      this.sessions.set(node.name, s)
      // A failed node may be retried by a later call.
      s.catch(() => this.sessions.delete(node.name))
    }
    return s
  }

  async closeAll(): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') s.value.close()
    for (const l of this.extraLeases.splice(0)) l.release()
  }

  /**
   * The pool's view of a node's connection: what to lease, and the key its state is kept under.
   * Throws NodeUnreachableError for a jump chain that cannot work (a farm built in code; the farm
   * file refuses these).
   */
  target(node: FarmNode): LinkTarget {
    this.hostKeys ??=
      this.opts.hostKeys ??
      HostTrust.forFarm(this.farm, { dataDir: this.opts.dataDir, acceptNew: this.opts.acceptNewHostKeys })
    const chain = jumpChain(this.farm, node)
    if (node.jump && (!chain.length || chain.some(isLocal) || chain[chain.length - 1]!.jump))
      throw new NodeUnreachableError(
        node,
        `its jump host "${node.jump}" is not an SSH node of this farm, or the jump hosts form a cycle`,
      )
    const timeoutMs = this.opts.timeoutMs
    let via: LinkTarget | null = null
    for (const hop of chain.reverse()) via = { node: hop, via, hostKeys: this.hostKeys, timeoutMs }
    return { node, via, hostKeys: this.hostKeys, timeoutMs }
  }

  /**
   * For a node behind a jump host, a fresh channel to its sshd through the jump node's pooled
   * connection (for a connection of its own, as `node <name> test` makes); undefined otherwise.
   */
  async tunnel(node: FarmNode): Promise<Duplex | undefined> {
    if (!node.jump) return undefined
    const via = this.target(node).via!
    const lease = this.pool.lease(via)
    this.extraLeases.push(lease)
    // Given back when the tunnel closes (or cannot open), or by closeAll, whichever comes first:
    // a long-lived process that tests or scans many times keeps no lease per call.
    let given = false
    const giveBack = () => {
      if (given) return
      given = true
      const i = this.extraLeases.indexOf(lease)
      if (i >= 0) this.extraLeases.splice(i, 1)
      lease.release()
    }
    let carrier
    try {
      carrier = await lease.acquire()
    } catch (e) {
      giveBack()
      throw new NodeUnreachableError(
        node,
        `its jump host ${via.node.name} cannot be reached: ${(e as Error).message}`,
      )
    }
    try {
      const channel = await forwardTo(carrier, via.node.name, node, this.opts.timeoutMs ?? 10_000)
      whenEnded(channel, giveBack)
      return channel
    } catch (e) {
      giveBack()
      throw e
    }
  }

  private async connect(node: FarmNode): Promise<ConnectedNode> {
    const timeoutMs = this.opts.timeoutMs ?? 10_000
    if (isLocal(node)) {
      const commands = new LocalCommandRunner()
      if (node.executor === 'shell')
        return {
          node,
          ssh: null,
          docker: null,
          commands,
          executor: new ShellExecutor(commands),
          close: () => {},
        }
      const docker = localDocker()
      await withTimeout(docker.ping(), timeoutMs, 'no answer from the local Docker socket').catch(
        (e: Error) => {
          throw new EngineUnavailableError(node, e.message)
        },
      )
      return {
        node,
        ssh: null,
        docker,
        commands,
        executor: new DockerExecutor(docker, node),
        close: () => {},
      }
    }
    const lease = this.pool.lease(this.target(node))
    try {
      await lease.acquire()
    } catch (e) {
      lease.release()
      throw e
    }
    const close = () => lease.release()
    // Commands and engine requests follow the pooled connection through reconnections.
    const commands = new SshCommandRunner(lease.exec)
    const base = {
      node,
      commands,
      close,
      get ssh() {
        return lease.client
      },
    }
    if (node.executor === 'shell')
      return Object.assign(base, { docker: null, executor: new ShellExecutor(commands) })
    const docker = lease.docker()
    try {
      await withTimeout(docker.ping(), timeoutMs, `no answer within ${timeoutMs} ms`)
    } catch (e) {
      close()
      throw new EngineUnavailableError(node, (e as Error).message)
    }
    return Object.assign(base, { docker, executor: new DockerExecutor(docker, node, () => lease.client) })
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
