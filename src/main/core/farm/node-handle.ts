/**
 * What node operations need of an open node: its connection (null for this machine), its
 * Docker engine (null for shell nodes) and a way to run commands on the machine itself.
 * NodeSession (core/executor/node-sessions.ts) provides it; operations take this narrower type
 * so they can be tested with fakes and used by the API, the CLI and the UI alike.
 */
import type Docker from 'dockerode'
import type { Client } from 'ssh2'
import type { CommandRunner } from '../executor/command-runner'
import type { FarmNode } from './farm-model'

export interface NodeHandle {
  node: FarmNode
  /** The node's pooled SSH connection; null for this machine. */
  ssh: Client | null
  /** The node's engine over that connection (or the local socket); null for shell nodes. */
  docker: Docker | null
  /** Runs a shell command line on the machine (over `ssh`, or locally). */
  commands: CommandRunner
}

/** Runs a command and collects its output; `code` is null when the signal stopped it. */
export async function runCollect(
  commands: CommandRunner,
  command: string,
  signal: AbortSignal,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const code = await commands.run(command, (s, d) => (s === 'stdout' ? out : err).push(d), signal)
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}

/** An engine request that gives up when `signal` aborts (a frozen dockerd never answers). */
export function askEngine<T>(
  docker: Docker,
  method: 'info' | 'version' | 'ping',
  signal: AbortSignal,
): Promise<T> {
  // dockerode honours abortSignal on these calls; its typings do not list the option.
  const call = docker[method] as unknown as (opts: { abortSignal: AbortSignal }) => Promise<T>
  return call.call(docker, { abortSignal: signal })
}
