/**
 * Jobs straight in a shell, for nodes without Docker (a Mac used for signing) and for this
 * machine when no engine answers. Each job gets a fresh temporary workspace, removed after. A
 * step's script and environment go over the command's standard input into files only the job's
 * user can read (step-launcher), never onto its command line.
 */
import type { CommandRunner } from './command-runner'
import {
  shellQuote,
  stopGracefully,
  type JobEnvironment,
  type JobSetup,
  type Leftover,
  type NodeExecutor,
  type OutputSink,
  type StepCommand,
} from './job-environment'
import { killGroup, shellDelivery, stepFiles, stopGroup, unexportable } from './step-launcher'

/** Every job workspace is `${TMPDIR:-/tmp}/yardmaster-<run>-<job>-XXXXXX`: the health probe counts them as our jobs. */
export const SHELL_WORKSPACE_PREFIX = 'yardmaster-'

export class ShellExecutor implements NodeExecutor {
  constructor(private readonly commands: CommandRunner) {}

  async prepare(
    setup: JobSetup,
    _progress: (m: string) => void,
    signal: AbortSignal,
  ): Promise<JobEnvironment> {
    let out = ''
    const prefix = `${SHELL_WORKSPACE_PREFIX}${setup.runId}-${safeKey(setup.jobKey)}-XXXXXX`
    const code = await this.commands.run(
      // <base>/work is the workspace, <base>/temp is RUNNER_TEMP, as the runner lays out _work and _temp.
      `d=$(mktemp -d "\${TMPDIR:-/tmp}/${prefix}") && mkdir "$d/work" "$d/temp" && echo "$d"`,
      (stream, d) => {
        if (stream === 'stdout') out += d.toString()
      },
      signal,
    )
    const base = out.trim()
    if (code !== 0 || !base)
      throw new Error(`could not create a workspace on the node (mktemp exited ${code})`)
    return new ShellJob(this.commands, base, setup.graceMs ?? 0)
  }

  async fence(l: Leftover, signal: AbortSignal): Promise<void> {
    // The attempt's workspace (or, when it died before saying which, every workspace of its job:
    // none of them can be in use, since the node takes no work before it is fenced); each
    // step's launcher wrote its process group's number there.
    const bases = l.ref
      ? shellQuote(l.ref)
      : `"\${TMPDIR:-/tmp}"/${SHELL_WORKSPACE_PREFIX}${l.runId}-${safeKey(l.jobKey)}-*`
    const code = await this.commands.run(
      `for b in ${bases}; do [ -d "$b" ] || continue; ` +
        `for p in "$b"/temp/_steps/*/pid; do [ -s "$p" ] && kill -KILL -"$(cat "$p")" 2>/dev/null; done; ` +
        `rm -rf "$b"; done; exit 0`,
      () => {},
      signal,
    )
    if (code !== 0)
      throw new Error(`could not clear attempt ${l.attempt} of ${l.jobKey}'s workspace (exit ${code})`)
  }
}

const safeKey = (key: string) => key.replace(/[^A-Za-z0-9_-]/g, '_')

class ShellJob implements JobEnvironment {
  readonly description: string
  readonly ref: string
  readonly workspace: string
  readonly temp: string
  constructor(
    private readonly commands: CommandRunner,
    private readonly base: string,
    private readonly graceMs: number,
  ) {
    this.ref = base
    this.workspace = `${base}/work`
    this.temp = `${base}/temp`
    this.description = `workspace ${this.workspace}`
  }

  async runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null> {
    const env = { ...cmd.env, GITHUB_WORKSPACE: this.workspace }
    // A shell can only be handed shell variable names; GitHub also allows names such as my-var.
    const skipped = unexportable(env)
    if (skipped.length)
      onOutput(
        'stderr',
        Buffer.from(
          `yardmaster: a shell node cannot pass ${skipped.map((n) => `"${n}"`).join(', ')} to the step ` +
            '(not a shell variable name); rename it, or run the job on a docker node\n',
        ),
      )
    const files = stepFiles(cmd, { parent: this.temp, workspace: this.workspace, exports: env })
    const { command, input } = shellDelivery(files)
    // Stopping: SIGTERM to the step's process group, so it may clean up; SIGKILL to what is left
    // after the grace period, then the command is given up.
    const hard = new AbortController()
    // The step's process group, once SIGTERM found it: the launcher's pid file may be gone by the KILL.
    let group: number | null = null
    const send = (command: string) => {
      let out = ''
      return this.commands
        .run(command, (_s, d) => void (out += d.toString()), new AbortController().signal)
        .then(() => out.trim())
        .catch(() => '')
    }
    const kill = () => {
      // Given up a second after the KILL at the latest: a stalled connection may never answer.
      const giveUp = () => hard.abort()
      void send(group !== null ? killGroup(group) : stopGroup(files, 'KILL')).finally(giveUp)
      setTimeout(giveUp, 1_000).unref()
    }
    const term = () =>
      void send(stopGroup(files, 'TERM')).then((printed) => {
        if (/^\d+$/.test(printed)) group = Number(printed)
      })
    if (signal.aborted) return null
    const disarm = stopGracefully(signal, this.graceMs, term, kill)
    try {
      const code = await this.commands.run(command, onOutput, hard.signal, input)
      return signal.aborted ? null : code
    } finally {
      disarm()
    }
  }

  async dispose(): Promise<boolean> {
    try {
      const code = await this.commands.run(
        `rm -rf ${shellQuote(this.base)}`,
        () => {},
        new AbortController().signal,
      )
      return code === 0
    } catch {
      return false // the node may be gone: fenced before it takes new work
    }
  }
}
