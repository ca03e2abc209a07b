import type { ResourceNeeds, ServiceSpec } from '../workflow/container-options'

/**
 * "Where commands run", one interface for every kind of node (act's pkg/container idea):
 * a container on a Docker engine over SSH or locally, a shell over SSH, a local shell; later a
 * simulated backend and a cluster engine. The runner sees only these two interfaces.
 */
export type OutputSink = (stream: 'stdout' | 'stderr', chunk: Buffer) => void

export interface StepCommand {
  script: string
  /** bash, sh, python, or a command with {0}; null: GitHub's default, `bash -e` when bash exists, else `sh -e`. */
  shell: string | null
  env: Record<string, string>
  /** Relative to the job's workspace, or absolute. */
  workingDirectory: string | null
  /** Folders to put in front of PATH ($GITHUB_PATH of earlier steps). */
  pathPrepend?: string[]
  /** A command run first in the same process (saves a round trip: the job's set-up rides on its first step). */
  prelude?: string
  /**
   * A command run after the step in the same process, whatever the step's exit code (which is
   * kept): the runner reads the step's file commands this way instead of with another exec.
   */
  epilogue?: string
}

export interface JobSetup {
  /** The history's instance id (RunStore.instanceId): run ids are unique only within it. */
  instance: string
  runId: number
  jobKey: string
  /** Image for container executors; ignored by shells. */
  image: string | null
  env: Record<string, string>
  /** Limits for the job's container (docker executors); shells ignore them. */
  resources?: ResourceNeeds
  /** `container.volumes` bind mounts and `container.credentials` (docker executors). */
  volumes?: string[]
  credentials?: { username: string; password: string } | null
  /** `services:` containers beside the job's (docker executors). */
  services?: ServiceSpec[]
}

export interface JobEnvironment {
  /** For logs: container id, or workspace path. */
  readonly description: string
  /** The workspace path inside the environment (GITHUB_WORKSPACE). */
  readonly workspace: string
  /** A scratch folder for the job, outside the workspace (RUNNER_TEMP). */
  readonly temp: string
  /** Runs one step; resolves with its exit code, or null when the signal aborted it. */
  runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null>
  /** Removes what prepare made (container, workspace). Never throws. */
  dispose(): Promise<void>
}

export interface NodeExecutor {
  /** Makes a fresh environment for one job; reports long work (an image copy) through `progress`. */
  prepare(setup: JobSetup, progress: (message: string) => void, signal: AbortSignal): Promise<JobEnvironment>
}

/**
 * argv that runs a step script with the shell GitHub would pick: `shell: bash` is
 * `bash --noprofile --norc -eo pipefail`, `shell: sh` is `sh -e`, and no shell means bash -e
 * where bash exists, else sh -e. Choosing inside the environment saves a round trip.
 */
export function stepArgv(
  cmd: Pick<StepCommand, 'shell' | 'script' | 'pathPrepend' | 'prelude' | 'epilogue'>,
): string[] {
  const argv = shellArgv(cmd.shell, cmd.script)
  const before: string[] = []
  if (cmd.prelude) before.push(`{ ${cmd.prelude}; } || exit 127`)
  // PATH of the environment is only known inside it: prepend there.
  if (cmd.pathPrepend?.length)
    before.push(`PATH=${cmd.pathPrepend.map(shellQuote).join(':')}:"$PATH"; export PATH`)
  if (!before.length && !cmd.epilogue) return argv
  const run = cmd.epilogue ? `"$@"; rc=$?; { ${cmd.epilogue}; }; exit $rc` : 'exec "$@"'
  return ['sh', '-c', [...before, run].join('; '), 'yardmaster-step', ...argv]
}

function shellArgv(shell: StepCommand['shell'], script: string): string[] {
  if (shell === 'bash') return ['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c', script]
  if (shell === 'sh') return ['sh', '-e', '-c', script]
  if (shell === 'python') return ['python3', '-c', script]
  if (shell?.includes('{0}')) {
    // A custom shell gets the script as a file, as on GitHub: `{0}` is replaced by its path.
    const write = 'f=$(mktemp "${TMPDIR:-/tmp}/yardmaster-step-XXXXXX") && printf %s "$1" > "$f" && shift && '
    const command = shell.replace('{0}', '"$f"')
    return ['sh', '-c', `${write}${command}; rc=$?; rm -f "$f"; exit $rc`, 'yardmaster-step', script]
  }
  const pick =
    'if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc -e -c "$1"; else exec sh -e -c "$1"; fi'
  return ['sh', '-c', pick, 'yardmaster-step', script]
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}
