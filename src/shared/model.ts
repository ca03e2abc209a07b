/**
 * Data shapes that cross the API boundary (main process <-> renderer, server <-> browser).
 * No Node, no DOM: this folder is imported by every layer.
 *
 * States are closed unions; the transitions that are legal live in src/main/core/executor/states.ts.
 *
 *   run:  queued -> running -> succeeded | failed | cancelled
 *   job:  pending -> running -> succeeded | failed | cancelled
 *         pending -> skipped          (a job it needs did not succeed)
 *         pending -> cancelled        (the run was cancelled before it started)
 *   step: pending -> running -> succeeded | failed | cancelled
 *         pending -> skipped          (an earlier step failed)
 */

export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'
export type JobState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled'
export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled'

export const FINISHED_RUN_STATES: readonly RunState[] = ['succeeded', 'failed', 'cancelled']

export interface RunSummary {
  id: number
  workflowName: string
  workflowFile: string
  state: RunState
  /** Epoch milliseconds. */
  createdAt: number
  startedAt: number | null
  finishedAt: number | null
  jobCount: number
}

export interface StepView {
  index: number
  name: string
  state: StepState
  exitCode: number | null
  /** GitHub's conclusion: `success` for a failed step with continue-on-error; null until it ends. */
  conclusion: string | null
  startedAt: number | null
  finishedAt: number | null
}

export interface JobView {
  id: number
  /** The job's id in the workflow file (`jobs.<key>`). */
  key: string
  name: string
  state: JobState
  needs: string[]
  runsOn: string[]
  nodeName: string | null
  image: string | null
  exitCode: number | null
  /** Why the job failed or was skipped, in plain words; null when it succeeded. */
  reason: string | null
  /** The job's `outputs:`, as given to `needs.<job>.outputs`. */
  outputs: Record<string, string>
  startedAt: number | null
  finishedAt: number | null
  steps: StepView[]
}

export interface RunDetail {
  run: RunSummary
  jobs: JobView[]
}

export type LogStream = 'stdout' | 'stderr' | 'system'

export interface LogLine {
  /** Monotonic per database: a client asks for lines after the last seq it has. */
  seq: number
  runId: number
  jobKey: string
  /** Null for lines about the job rather than one step (container start, node chosen). */
  stepIndex: number | null
  stream: LogStream
  text: string
  at: number
}

export interface NodeView {
  name: string
  host: string
  executor: 'docker' | 'shell'
  labels: string[]
  slots: number
}

export interface AppInfo {
  version: string
  dataDir: string
  farmFile: string | null
}

/** Facts a node's Docker engine reports (`docker info`, plus `df` of its data root). Sizes in bytes. */
export interface EngineFacts {
  serverVersion: string
  /** As the engine names them: `linux`, `x86_64`. */
  osType: string
  operatingSystem: string
  architecture: string
  cpus: number
  memoryBytes: number
  /** Engine labels (`dockerd --label k=v`), as a set: the engine returns them in no fixed order. */
  labels: Record<string, string>
  runtimes: string[]
  storageDriver: string
  dataRoot: string
  /** Free space where images and containers live; null when `df` could not tell. */
  dataRootFreeBytes: number | null
}

/** Facts the machine itself reports (uname, nproc, meminfo or sysctl, df /, `command -v`). */
export interface HostFacts {
  /** `uname -s`, `uname -m`. */
  kernel: string
  machine: string
  cpus: number | null
  memoryBytes: number | null
  rootFreeBytes: number | null
  /** Tools found on PATH (shell nodes only; null when not looked for). */
  tools: string[] | null
}

export interface NodeFacts {
  /** Null for shell nodes, or when the engine did not answer (see problems). */
  engine: EngineFacts | null
  host: HostFacts | null
  /** Parts of the probe that failed, in plain words; the rest is still good. */
  problems: string[]
  probedAt: number
}

/**
 * What a node offers to jobs: declared labels merged with labels derived from probed facts.
 * `labels` is what `runs-on` is matched against (lower case).
 */
export interface NodeCapabilities {
  labels: string[]
  declared: string[]
  /** `self-hosted`, OS and architecture as GitHub names them, `docker`, `gpu`. */
  automatic: string[]
  /** Engine labels as `key=value`. */
  engineLabels: string[]
  os: string | null
  arch: string | null
  cpus: number | null
  memoryBytes: number | null
  /** Docker nodes: free space of the engine's data root; shell nodes: of `/`. */
  diskFreeBytes: number | null
  gpu: boolean
  tools: string[] | null
  /** Where the declaration and the probe disagree, said plainly. */
  notes: string[]
}

/** One node as `yardmaster nodes` shows it: declared, probed, or why it could not be probed. */
export interface NodeStatusView extends NodeView {
  /** `user@host:port`, or `this machine`. */
  address: string
  reachable: boolean
  /** Why the node could not be reached or probed; null when it was. */
  unreachableReason: string | null
  facts: NodeFacts | null
  capabilities: NodeCapabilities
}

/** `yardmaster node <name> test`. Times in milliseconds. */
export interface ConnectionTestView {
  node: string
  /** TCP + SSH handshake + authentication; null for this machine. */
  handshakeMs: number | null
  /** First engine request, which opens its channel; null for shell nodes. */
  firstRequestMs: number | null
  engineVersion: string | null
  apiVersion: string | null
  /** Median of `samples` round trips on the open connection (engine ping, or `true` in a shell). */
  roundTripMs: number
  samples: number
}

export interface ContainerView {
  id: string
  name: string
  image: string
  state: string
  status: string
  createdAt: number
  /** Carries io.yardmaster.managed=true: Yardmaster made it. */
  managed: boolean
  runId: string | null
  jobKey: string | null
}

export interface ImageView {
  id: string
  tags: string[]
  sizeBytes: number
  createdAt: number
  dangling: boolean
}

export interface PruneReport {
  containers: Array<{ id: string; name: string }>
  volumes: string[]
  images: string[]
  reclaimedBytes: number
  /** Things that matched but were left, and why (in use, just created). */
  kept: Array<{ what: string; reason: string }>
}

export interface ImageCopyView {
  image: string
  from: string
  to: string
  /** `present`: the target already had the same image; nothing was sent. */
  outcome: 'copied' | 'present'
  bytes: number
  ms: number
  imageId: string
  /** The image the target had under that name before, now untagged (as `docker load` leaves it). */
  replacedImageId: string | null
}
