import type { ResourceNeeds, ServiceSpec } from '../workflow/container-options'

/**
 * "Where commands run", one interface for every kind of node (act's pkg/container idea):
 * a container on a Docker engine over SSH or locally, a shell over SSH, a local shell; later a
 * simulated backend and a cluster engine. The runner sees only these two interfaces.
 */
export type OutputSink = (stream: 'stdout' | 'stderr', chunk: Buffer) => void

/**
 * One step as the environment runs it. Its script and environment hold secrets: executors never
 * put them on a command line or in a container's config (see step-launcher).
 */
export interface StepCommand {
  script: string
  /** bash, sh, python, or a command with {0}; null: GitHub's default, `bash -e` when bash exists, else `sh -e`. */
  shell: string | null
  /** The step's whole environment (the runner's variables, the job's, the step's). */
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
  /**
   * A folder where the step keeps its record on the node: its output as it printed it (`out`,
   * `err`, the epilogue's included), its launcher's process id (`pid`) and, once the step and its
   * output are done, its exit code (`rc`). A step outlives the orchestrator that started it; the
   * next one reads the rest of its output and its result from here (JobEnvironment.records).
   */
  record?: string
  /**
   * With `record`: what the orchestrator knows of the job before this step (job-runner's
   * checkpoint, JSON), kept as the record's `state.json`, so the one that takes the job over after
   * a crash knows where it stood. It rides to the node like the script, never on a command line.
   */
  checkpoint?: string
}

export interface JobSetup {
  /** The history's instance id (RunStore.instanceId): run ids are unique only within it. */
  instance: string
  runId: number
  jobKey: string
  /** The job's attempt (1 first), and the orchestrator holding it (claim holder): labelled on what the attempt makes. */
  attempt?: number
  holder?: string
  /** Image for container executors; ignored by shells. */
  image: string | null
  /** Limits for the job's container (docker executors); shells ignore them. */
  resources?: ResourceNeeds
  /** `container.volumes` bind mounts and `container.credentials` (docker executors). */
  volumes?: string[]
  credentials?: { username: string; password: string } | null
  /** `services:` containers beside the job's (docker executors). */
  services?: ServiceSpec[]
  /** A stopped step's processes get SIGTERM, and SIGKILL this long after if they still run. @default 0 */
  graceMs?: number
}

export interface JobEnvironment {
  /** For logs: container id, or workspace path. */
  readonly description: string
  /** What `NodeExecutor.fence` takes to find it again: the container id, or the workspace's base folder. */
  readonly ref: string
  /** The workspace path inside the environment (GITHUB_WORKSPACE). */
  readonly workspace: string
  /** A scratch folder for the job, outside the workspace (RUNNER_TEMP). */
  readonly temp: string
  /**
   * Where steps keep their records (StepCommand.record), one folder per step under it; absent
   * where a step cannot outlive its orchestrator (a shell node's step ends with its SSH session).
   */
  readonly records?: string
  /** Runs one step; resolves with its exit code, or null when the signal aborted it. */
  runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null>
  /**
   * What became of a step an orchestrator that died started here (its record, StepCommand.record):
   * the whole of its output from the start (stdout and stderr, as the step printed them), then
   * its exit code once it ends (137 when it was killed before it could say; null when `signal`
   * stopped it), or 'not-started' when it never started. Only where `records` is set.
   */
  resumeStep?(
    record: string,
    onOutput: OutputSink,
    signal: AbortSignal,
  ): Promise<number | null | 'not-started'>
  /** A file of the environment (a step record's state.json), or null when there is none. */
  readFile?(path: string, signal: AbortSignal): Promise<string | null>
  /** The job container's image id (sha256:…), for a failure's reproduction recipe; null without one. */
  imageId?(): Promise<string | null>
  /** Removes what prepare made (container, workspace). Never throws: false when something may be left (the node did not answer). */
  dispose(): Promise<boolean>
}

/** An attempt whose leftovers may still run on a node: what fencing looks for. */
export interface Leftover {
  instance: string
  runId: number
  jobKey: string
  attempt: number
  /** JobEnvironment.ref, when the attempt got that far; null when it may have died before. */
  ref: string | null
}

export interface NodeExecutor {
  /** Makes a fresh environment for one job; reports long work (an image copy) through `progress`. */
  prepare(setup: JobSetup, progress: (message: string) => void, signal: AbortSignal): Promise<JobEnvironment>
  /**
   * Fencing: stops and removes what an attempt left on the node (its node was lost, or its
   * orchestrator died), so one job never runs twice. Done before the node takes new work;
   * throws when the node does not answer (it then takes no work either).
   */
  fence(leftover: Leftover, signal: AbortSignal): Promise<void>
  /**
   * Takes over what an attempt of an orchestrator that died made on the node, when it still runs
   * there (found by its labels, and by Leftover.ref): null when it is gone or stopped. Only
   * executors whose steps outlive their orchestrator have it (docker).
   */
  adopt?(leftover: Leftover, graceMs: number, signal: AbortSignal): Promise<JobEnvironment | null>
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * How every executor stops a step: once `signal` aborts (also if it already has), `term()` so the
 * step may clean up, then `kill()` when `graceMs` is over (at once, without `term`, when it is 0).
 * Returns what disarms it once the step has ended.
 */
export function stopGracefully(
  signal: AbortSignal,
  graceMs: number,
  term: () => void,
  kill: () => void,
): () => void {
  let timer: NodeJS.Timeout | null = null
  const stop = () => {
    if (graceMs <= 0) return kill()
    term()
    timer = setTimeout(kill, graceMs)
  }
  signal.addEventListener('abort', stop, { once: true })
  if (signal.aborted) stop()
  return () => {
    signal.removeEventListener('abort', stop)
    if (timer) clearTimeout(timer)
  }
}
