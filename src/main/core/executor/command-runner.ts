/**
 * Runs a POSIX shell command line somewhere: on this machine, or over an SSH connection.
 * The shell executor is built on this, so local and remote shells behave the same.
 */
import { spawn } from 'node:child_process'
import type { Client, ClientChannel } from 'ssh2'
import type { OutputSink } from './job-environment'

export interface CommandRunner {
  /**
   * Resolves with the exit code, or null when the signal killed the command. `input` is written
   * to its standard input, which then ends: the way to hand a command what must not be on its
   * command line (a step's script and environment). Without it, standard input is empty.
   */
  run(command: string, onOutput: OutputSink, signal: AbortSignal, input?: string): Promise<number | null>
}

export class LocalCommandRunner implements CommandRunner {
  run(command: string, onOutput: OutputSink, signal: AbortSignal, input?: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return resolve(null)
      // Own process group, so cancelling kills the whole tree the step started.
      const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
      // A command that exits before reading all of it closes the pipe: not an error of ours.
      child.stdin.on('error', () => {})
      child.stdin.end(input ?? '')
      const kill = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL')
        } catch {
          /* already gone */
        }
      }
      signal.addEventListener('abort', kill, { once: true })
      child.stdout.on('data', (d: Buffer) => onOutput('stdout', d))
      child.stderr.on('data', (d: Buffer) => onOutput('stderr', d))
      child.on('error', (e) => {
        signal.removeEventListener('abort', kill)
        reject(e)
      })
      child.on('close', (code) => {
        signal.removeEventListener('abort', kill)
        resolve(signal.aborted ? null : (code ?? null))
      })
    })
  }
}

export class SshCommandRunner implements CommandRunner {
  constructor(private readonly ssh: Client) {}

  run(command: string, onOutput: OutputSink, signal: AbortSignal, input?: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return resolve(null)
      let done = false
      let channel: ClientChannel | null = null
      const finish = (settle: () => void) => {
        if (done) return
        done = true
        signal.removeEventListener('abort', onAbort)
        settle()
      }
      // Aborting answers at once, whatever the connection does: a stalled one may never open the
      // channel, nor confirm that it closed.
      const onAbort = () => {
        finish(() => resolve(null))
        if (channel) kill(channel)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.ssh.exec(command, (err, ch: ClientChannel) => {
        if (done) return void (err ? undefined : kill(ch))
        if (err) return finish(() => reject(err))
        channel = ch
        ch.end(input ?? '')
        ch.on('data', (d: Buffer) => onOutput('stdout', d))
        ch.stderr.on('data', (d: Buffer) => onOutput('stderr', d))
        ch.on('close', (code?: number | null, signalName?: string) =>
          finish(() => {
            if (signalName) return resolve(null)
            if (typeof code === 'number') return resolve(code)
            // Neither an exit status nor a signal: the connection closed under the command.
            reject(new Error('the SSH connection closed before the command ended'))
          }),
        )
      })
    })
  }
}

/** Kills the command (where the server honours signals) and closes its channel. */
function kill(channel: ClientChannel): void {
  try {
    channel.signal('KILL')
    channel.close()
  } catch {
    /* the connection is gone: nothing left to kill from here */
  }
}
