/**
 * Opens nodes for work: one verified SSH connection per node (or none for this machine), with
 * the executor that fits it. A node is opened once and shared by all its jobs.
 */
import type { Client } from 'ssh2'
import { dockerOverSsh, localDocker } from '../farm/docker-over-ssh'
import { EngineUnavailableError } from '../farm/farm-errors'
import { isLocal, type Farm, type FarmNode } from '../farm/farm-model'
import { KnownHosts } from '../farm/known-hosts'
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

export interface NodeSessionOptions {
  /** SSH handshake and engine answer limit. @default 10000 */
  timeoutMs?: number
}

export class NodeSessions {
  private readonly sessions = new Map<string, Promise<NodeSession>>()
  private knownHosts: KnownHosts | null = null

  constructor(
    private readonly farm: Farm,
    private readonly opts: NodeSessionOptions = {},
  ) {}

  /** Opens the node, or returns the session already open; rejects with a farm error. */
  open(node: FarmNode): Promise<NodeSession> {
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

  private async connect(node: FarmNode): Promise<NodeSession> {
    const timeoutMs = this.opts.timeoutMs ?? 10_000
    if (isLocal(node)) {
      if (node.executor === 'shell')
        return { node, executor: new ShellExecutor(new LocalCommandRunner()), close: () => {} }
      const docker = localDocker()
      await withTimeout(docker.ping(), timeoutMs, 'no answer from the local Docker socket').catch(
        (e: Error) => {
          throw new EngineUnavailableError(node, e.message)
        },
      )
      return { node, executor: new DockerExecutor(docker, node), close: () => {} }
    }
    this.knownHosts ??= KnownHosts.load(this.farm.knownHosts)
    const ssh: Client = await connectSsh(node, this.knownHosts, { timeoutMs })
    const close = () => ssh.end()
    if (node.executor === 'shell')
      return { node, executor: new ShellExecutor(new SshCommandRunner(ssh)), close }
    const docker = dockerOverSsh(ssh)
    try {
      await withTimeout(docker.ping(), timeoutMs, `no answer within ${timeoutMs} ms`)
    } catch (e) {
      close()
      throw new EngineUnavailableError(node, (e as Error).message)
    }
    return { node, executor: new DockerExecutor(docker, node), close }
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
