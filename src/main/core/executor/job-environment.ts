/**
 * "Where commands run", one interface for every kind of node (act's pkg/container idea):
 * a container on a Docker engine over SSH or locally, a shell over SSH, a local shell; later a
 * simulated backend and a cluster engine. The runner sees only these two interfaces.
 */
export type OutputSink = (stream: 'stdout' | 'stderr', chunk: Buffer) => void

export interface StepCommand {
  script: string
  /** null: GitHub's default, `bash -e` when bash exists, else `sh -e`. */
  shell: 'bash' | 'sh' | null
  env: Record<string, string>
  /** Relative to the job's workspace, or absolute. */
  workingDirectory: string | null
}

export interface JobSetup {
  /** The history's instance id (RunStore.instanceId): run ids are unique only within it. */
  instance: string
  runId: number
  jobKey: string
  /** Image for container executors; ignored by shells. */
  image: string | null
  env: Record<string, string>
}

export interface JobEnvironment {
  /** For logs: container id, or workspace path. */
  readonly description: string
  /** The workspace path inside the environment (GITHUB_WORKSPACE). */
  readonly workspace: string
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
export function stepArgv(shell: StepCommand['shell'], script: string): string[] {
  if (shell === 'bash') return ['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c', script]
  if (shell === 'sh') return ['sh', '-e', '-c', script]
  const pick =
    'if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc -e -c "$1"; else exec sh -e -c "$1"; fi'
  return ['sh', '-c', pick, 'yardmaster-step', script]
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}
