/**
 * Opens nodes for work: one verified SSH connection per node (or none for this machine), with
 * the executor that fits it. A node is opened once and shared by all its jobs.
 */
import type { Duplex } from 'node:stream'
import type { Client } from 'ssh2'
import { dockerOverSsh, localDocker } from '../farm/docker-over-ssh'
import { EngineUnavailableError } from '../farm/farm-errors'
import { isLocal, jumpChain, type Farm, type FarmNode } from '../farm/farm-model'
import { HostTrust } from '../farm/host-trust'
import type { HostKeyChecker } from '../farm/known-hosts'
import type { NodeHandle } from '../farm/node-handle'
import { NodeUnreachableError } from '../farm/farm-errors'
import { connectSsh, forwardTo } from '../farm/ssh-connection'
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
}

export class NodeSessions {
  private readonly sessions = new Map<string, Promise<ConnectedNode>>()
  /** SSH connections by node name: a session's, and a jump host's even when it runs no jobs. */
  private readonly links = new Map<string, Promise<Client>>()
  private hostKeys: HostKeyChecker | null = null

  constructor(
    private readonly farm: Farm,
    private readonly opts: NodeSessionOptions = {},
  ) {}

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
    // Sessions first (each ends its own connection), then the jump hosts that carried them.
    for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') s.value.close()
    const links = [...this.links.values()].reverse()
    this.links.clear()
    for (const l of await Promise.allSettled(links)) if (l.status === 'fulfilled') l.value.end()
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
    const ssh = await this.link(node)
    const close = () => {
      this.links.delete(node.name)
      ssh.end()
    }
    const commands = new SshCommandRunner(ssh)
    if (node.executor === 'shell')
      return { node, ssh, docker: null, commands, executor: new ShellExecutor(commands), close }
    const docker = dockerOverSsh(ssh)
    try {
      await withTimeout(docker.ping(), timeoutMs, `no answer within ${timeoutMs} ms`)
    } catch (e) {
      close()
      throw new EngineUnavailableError(node, (e as Error).message)
    }
    return { node, ssh, docker, commands, executor: new DockerExecutor(docker, node), close }
  }

  /**
   * For a node behind a jump host, a fresh channel to its sshd through the jump node's shared
   * connection (for a connection of its own, as `node <name> test` makes); undefined otherwise.
   */
  async tunnel(node: FarmNode): Promise<Duplex | undefined> {
    return node.jump ? this.channelVia(node, this.opts.timeoutMs ?? 10_000) : undefined
  }

  /** The node's SSH connection, opened once; a jump host needs only this, not its engine. */
  private link(node: FarmNode): Promise<Client> {
    let l = this.links.get(node.name)
    if (!l) {
      l = this.connectLink(node)
      this.links.set(node.name, l)
      l.then(
        (c) => c.once('close', () => this.links.get(node.name) === l && this.links.delete(node.name)),
        () => this.links.get(node.name) === l && this.links.delete(node.name),
      )
    }
    return l
  }

  private async connectLink(node: FarmNode): Promise<Client> {
    const timeoutMs = this.opts.timeoutMs ?? 10_000
    this.hostKeys ??=
      this.opts.hostKeys ??
      HostTrust.forFarm(this.farm, { dataDir: this.opts.dataDir, acceptNew: this.opts.acceptNewHostKeys })
    // Behind a jump host, the connection rides a channel of the jump node's own (shared) connection.
    const sock = node.jump ? await this.channelVia(node, timeoutMs) : undefined
    return connectSsh(node, this.hostKeys, { timeoutMs, sock })
  }

  private async channelVia(node: FarmNode, timeoutMs: number) {
    const chain = jumpChain(this.farm, node)
    const jump = chain[0]
    // The farm file refuses these; a farm built in code might not.
    if (!jump || chain.some(isLocal) || chain[chain.length - 1]!.jump)
      throw new NodeUnreachableError(
        node,
        `its jump host "${node.jump}" is not an SSH node of this farm, or the jump hosts form a cycle`,
      )
    let via: Client
    try {
      via = await this.link(jump)
    } catch (e) {
      throw new NodeUnreachableError(
        node,
        `its jump host ${jump.name} cannot be reached: ${(e as Error).message}`,
      )
    }
    return forwardTo(via, jump.name, node, timeoutMs)
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
