/**
 * "Test connection": a fresh connection to one node, timed part by part, so an engineer can tell
 * a slow handshake (network, DNS, sshd) from a slow engine. It opens its own connection rather
 * than borrowing a pooled one: the handshake is what is being measured.
 */
import type { Duplex } from 'node:stream'
import type Docker from 'dockerode'
import type { ConnectionTestView } from '../../../shared/model'
import { LocalCommandRunner, SshCommandRunner, type CommandRunner } from '../executor/command-runner'
import { dockerOverSsh, localDocker } from '../transport/docker-over-ssh'
import { EngineUnavailableError } from './farm-errors'
import { isLocal, type FarmNode } from './farm-model'
import type { HostKeyChecker } from '../transport/known-hosts'
import { askEngine } from './node-handle'
import { connectSsh } from '../transport/ssh-connection'

export interface ConnectionTestOptions {
  /** Round trips to time on the open connection. @default 5 */
  samples?: number
  /** Limit for the handshake and for each engine request. @default 10000 */
  timeoutMs?: number
  /**
   * For a node behind a jump host: opens a channel to its sshd through the jump host
   * (NodeSessions.tunnel); the handshake time then includes opening it.
   */
  tunnel?: () => Promise<Duplex | undefined>
}

export async function testConnection(
  node: FarmNode,
  knownHosts: HostKeyChecker,
  opts: ConnectionTestOptions = {},
): Promise<ConnectionTestView> {
  const samples = opts.samples ?? 5
  const timeoutMs = opts.timeoutMs ?? 10_000
  const t0 = performance.now()
  const ssh = isLocal(node)
    ? null
    : await connectSsh(node, knownHosts, { timeoutMs, sock: await opts.tunnel?.() })
  const handshakeMs = ssh ? round(performance.now() - t0) : null
  try {
    if (node.executor === 'shell') {
      const commands: CommandRunner = ssh ? new SshCommandRunner(ssh) : new LocalCommandRunner()
      const rtt = await timed(samples, () => commandRoundTrip(commands, timeoutMs))
      return {
        node: node.name,
        handshakeMs,
        firstRequestMs: null,
        engineVersion: null,
        apiVersion: null,
        ...rtt,
      }
    }
    const docker = ssh ? dockerOverSsh(ssh) : localDocker()
    const ask = <T>(what: (signal: AbortSignal) => Promise<T>) =>
      what(AbortSignal.timeout(timeoutMs)).catch((e: Error) => {
        throw new EngineUnavailableError(
          node,
          e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.message,
        )
      })
    const t1 = performance.now()
    // The first request opens the engine channel (dial-stdio over SSH): timed on its own.
    const version = await ask((s) => askEngine<Docker.DockerVersion>(docker, 'version', s))
    const firstRequestMs = round(performance.now() - t1)
    const rtt = await timed(samples, () => ask((s) => askEngine(docker, 'ping', s)))
    return {
      node: node.name,
      handshakeMs,
      firstRequestMs,
      engineVersion: version.Version ?? null,
      apiVersion: version.ApiVersion ?? null,
      ...rtt,
    }
  } finally {
    ssh?.end()
  }
}

async function commandRoundTrip(commands: CommandRunner, timeoutMs: number): Promise<void> {
  const code = await commands.run('true', () => {}, AbortSignal.timeout(timeoutMs))
  if (code !== 0)
    throw new Error(code === null ? `no answer within ${timeoutMs} ms` : `\`true\` exited ${code}`)
}

async function timed(samples: number, once: () => Promise<unknown>) {
  const times: number[] = []
  for (let i = 0; i < samples; i++) {
    const t = performance.now()
    await once()
    times.push(performance.now() - t)
  }
  return { roundTripMs: round(median(times)), samples }
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}
