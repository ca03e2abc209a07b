/**
 * Opens nodes for work: one verified SSH connection per node (or none for this machine), with
 * the executor that fits it. A node is opened once and shared by all its jobs.
 */
import type { Client } from 'ssh2'
import { dockerOverSsh, localDocker } from '../farm/docker-over-ssh'
import { EngineUnavailableError } from '../farm/farm-errors'
import { isLocal, type Farm, type FarmNode } from '../farm/farm-model'
import { KnownHosts } from '../farm/known-hosts'
import type { NodeHandle } from '../farm/node-handle'
import { connectSsh } from '../farm/ssh-connection'
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
}

export class NodeSessions {
  private readonly sessions = new Map<string, Promise<ConnectedNode>>()
  private knownHosts: KnownHosts | null = null

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
    for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') s.value.close()
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
    this.knownHosts ??= KnownHosts.load(this.farm.knownHosts)
    const ssh: Client = await connectSsh(node, this.knownHosts, { timeoutMs })
    const close = () => ssh.end()
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
