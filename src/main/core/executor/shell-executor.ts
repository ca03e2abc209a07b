/**
 * Jobs straight in a shell, for nodes without Docker (a Mac used for signing) and for this
 * machine when no engine answers. Each job gets a fresh temporary workspace, removed after. A
 * step's script and environment go over the command's standard input into files only the job's
 * user can read (step-launcher), never onto its command line.
 */
import type { CommandRunner } from './command-runner'
import {
  shellQuote,
  type JobEnvironment,
  type JobSetup,
  type NodeExecutor,
  type OutputSink,
  type StepCommand,
} from './job-environment'
import { shellDelivery, stepFiles, unexportable } from './step-launcher'

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
    const prefix = `${SHELL_WORKSPACE_PREFIX}${setup.runId}-${setup.jobKey.replace(/[^A-Za-z0-9_-]/g, '_')}-XXXXXX`
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
    return new ShellJob(this.commands, base)
  }
}

class ShellJob implements JobEnvironment {
  readonly description: string
  readonly workspace: string
  readonly temp: string
  constructor(
    private readonly commands: CommandRunner,
    private readonly base: string,
  ) {
    this.workspace = `${base}/work`
    this.temp = `${base}/temp`
    this.description = `workspace ${this.workspace}`
  }

  runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null> {
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
    const { command, input } = shellDelivery(
      stepFiles(cmd, { parent: this.temp, workspace: this.workspace, exports: env }),
    )
    return this.commands.run(command, onOutput, signal, input)
  }

  async dispose(): Promise<void> {
    try {
      await this.commands.run(`rm -rf ${shellQuote(this.base)}`, () => {}, new AbortController().signal)
    } catch {
      /* the node may be gone; nothing else to clean */
    }
  }
}
