/**
 * Jobs straight in a shell, for nodes without Docker (a Mac used for signing) and for this
 * machine when no engine answers. Each job gets a fresh temporary workspace, removed after.
 */
import type { CommandRunner } from './command-runner'
import {
  shellQuote,
  stepArgv,
  type JobEnvironment,
  type JobSetup,
  type NodeExecutor,
  type OutputSink,
  type StepCommand,
} from './job-environment'

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
    return new ShellJob(this.commands, base, setup.env)
  }
}

class ShellJob implements JobEnvironment {
  readonly description: string
  readonly workspace: string
  readonly temp: string
  constructor(
    private readonly commands: CommandRunner,
    private readonly base: string,
    private readonly env: Record<string, string>,
  ) {
    this.workspace = `${base}/work`
    this.temp = `${base}/temp`
    this.description = `workspace ${this.workspace}`
  }

  runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null> {
    const env = { ...this.env, ...cmd.env, GITHUB_WORKSPACE: this.workspace }
    const dir = cmd.workingDirectory
      ? cmd.workingDirectory.startsWith('/')
        ? cmd.workingDirectory
        : `${this.workspace}/${cmd.workingDirectory}`
      : this.workspace
    const assignments = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`))
    const line =
      `cd ${shellQuote(dir)} && exec env ${assignments.join(' ')} ` + stepArgv(cmd).map(shellQuote).join(' ')
    return this.commands.run(line, onOutput, signal)
  }

  async dispose(): Promise<void> {
    try {
      await this.commands.run(`rm -rf ${shellQuote(this.base)}`, () => {}, new AbortController().signal)
    } catch {
      /* the node may be gone; nothing else to clean */
    }
  }
}
