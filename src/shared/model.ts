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
/**
 * One go of a job on a node. A preempted attempt (a hotfix took its slot) or a lost one (the
 * process running it died) is not the job's failure: the job goes on in a new attempt.
 */
export type AttemptState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'preempted' | 'lost'

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
  /** While it runs: when it is expected to finish, from its jobs' past durations; null when unknown. */
  expectedFinish: number | null
  /** Why it was asked to stop, while it has not yet (the console shows "cancelling"); else null. */
  cancelling: string | null
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
  /** Every time the job was given a node, first to last; empty while it never was. */
  attempts: AttemptView[]
  /** Why it was asked to stop, while it has not yet (the console shows "cancelling"); else null. */
  cancelling: string | null
  /** How to try its failing step by hand, when it failed for its own reasons; else null. */
  repro: ReproRecipe | null
  /** The farm's per-job log cap in bytes, when the job's output went past it (the rest was dropped); else null. */
  logCappedAt: number | null
}

/** What a failed step ran, and where: enough to run it again by hand. Never a secret's value. */
export interface ReproRecipe {
  node: string
  /** How to reach the node over SSH (user@host:port); null for this machine. */
  address: string | null
  /** The job's image (docker nodes); null on shell nodes. */
  image: string | null
  /** The image's id on the node (sha256:…), when known. */
  imageId: string | null
  step: { index: number; name: string }
  shell: string
  workingDirectory: string | null
  /** The names of the step's environment variables (values are not kept: some are secrets). */
  env: string[]
  /** The step's script, as it ran (expressions evaluated, secrets masked). */
  script: string
}

export interface AttemptView {
  /** 1 for the first attempt. */
  number: number
  nodeName: string
  state: AttemptState
  /** Why it ended other than succeeded, in plain words. */
  reason: string | null
  startedAt: number
  finishedAt: number | null
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
  /** The job's attempt it came from (1 first); null for lines about the job outside its attempts. */
  attempt: number | null
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

/** A node's health, as the health monitor observes it (src/main/core/farm/health/node-state.ts). */
export type HealthKind = 'online' | 'degraded' | 'unreachable' | 'offline'
/** What an admin (or the quarantine rule) decided. */
export type AdminKind = 'active' | 'draining' | 'cordoned' | 'quarantined'
/** Why a node does not answer: its network, its engine, its host key, or our credentials. */
export type UnreachableCause = 'network' | 'engine' | 'host-key' | 'auth'

/** One health sample, as stored (null: not measured, or not measurable on this node). */
export interface HealthSample {
  at: number
  load1: number | null
  cpus: number | null
  /** CPU busy since the previous sample, 0-100 (null on the first). */
  cpuPct: number | null
  memUsedPct: number | null
  rootFreeBytes: number | null
  /** Free space of the engine's data root (docker nodes). */
  dataFreeBytes: number | null
  /** Jobs of ours on the node: our running containers (docker), our job workspaces (shell). */
  containersOurs: number | null
  containersOthers: number | null
  /** Engine ping round trip. */
  engineMs: number | null
  /** The script's round trip: the connection's latency plus a shell's start. */
  rttMs: number | null
  /** Node clock minus ours (positive: the node is ahead). */
  skewMs: number | null
}

/** A node as the console shows it: declared, its live state, its latest health sample. */
export interface NodeLiveView extends NodeView {
  /** `user@host:port` (`via jump`), or `this machine`. */
  address: string
  health: HealthKind
  /** Epoch ms the node entered this health state. */
  healthSince: number
  /** Degraded: what is wrong; unreachable and offline: why. Empty when online. */
  healthReasons: string[]
  unreachableCause: UnreachableCause | null
  admin: AdminKind
  adminSince: number | null
  adminReason: string | null
  /** `online`, `degraded (low disk on /)`, `unreachable (…)`, `online, draining: …` */
  description: string
  canTakeNewJobs: boolean
  /** The image for jobs without `container:` (docker nodes), as declared. */
  defaultImage: string | null
  /** Jobs in a row that failed for the node's sake; the node is quarantined at 3. */
  infraFailures: number
  /** The latest sample that answered; null until one did. */
  sample: HealthSample | null
  /** Declared in the farm file at this line (null for the embedded default). */
  source: { file: string; line: number } | null
}

/** A point of a node's health series: one sample, or the average of a minute or an hour of them. */
export interface SeriesPoint {
  at: number
  /** Samples behind this point (1 for a sample) and how many of them answered. */
  samples: number
  reachable: number
  load1: number | null
  load1Max: number | null
  cpuPct: number | null
  cpuPctMax: number | null
  memUsedPct: number | null
  rootFreeBytes: number | null
  dataFreeBytes: number | null
  containersOurs: number | null
  containersOthers: number | null
  engineMs: number | null
  engineMsMax: number | null
  rttMs: number | null
  skewMs: number | null
}

/** Fine for the last hour, per minute for two days, per hour for 90 days. */
export interface Series {
  resolution: 'sample' | 'minute' | 'hour'
  points: SeriesPoint[]
}

/** A change of a node's health or admin state, as the history keeps it. */
export interface NodeEventRecord {
  node: string
  at: number
  kind: 'health' | 'admin'
  from: string
  to: string
  reason: string | null
}

/** The key a node's sshd offers, and what the known_hosts files say of it. */
export interface HostKeyView {
  node: string
  keyType: string
  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  fingerprint: string
  /**
   * trusted: a known_hosts file holds this key; unknown: none knows the host (trust on first
   * use); changed: one holds another key for it (refused; maybe an attack); revoked: @revoked.
   */
  verdict: 'trusted' | 'unknown' | 'changed' | 'revoked'
  /** Where the key is (trusted), would be recorded (unknown), or where the other key is. */
  file: string | null
  line: number | null
  /** The key on record, when it changed. */
  knownFingerprint: string | null
  /** True when this call recorded it. */
  recorded: boolean
}

/** Fields of a node the console may change; written back to the farm file, comments kept. */
export interface NodeEdit {
  /** Declared labels (without `self-hosted`, which every node has). */
  labels?: string[]
  slots?: number
  /** Null removes the key. */
  defaultImage?: string | null
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

/** The classes a run's jobs are served in, highest first. */
export type Priority = 'hotfix' | 'high' | 'normal' | 'low'

/** A run triggered and not started yet. */
export interface QueuedRunView {
  queueId: number
  workflowFile: string
  priority: Priority
  submittedAt: number
  /** Its place in the order of service (1 is next). */
  position: number
}

/** A job of a started run that waits for a node slot, with why (the scheduler's words). */
export interface WaitingJobView {
  runId: number
  jobId: number
  key: string
  priority: Priority
  since: number
  reason: string
  /** The farm's nodes by why none took it, as Nomad counts them: {"lacks label gpu": 3, "busy": 2}. */
  counts: Record<string, number>
  /** Its place in the order of service for slots; null while a concurrency group holds it. */
  position: number | null
  /** When it is expected to start, from the forecasts of what runs and waits before it; null when unknown. */
  expectedStart: number | null
}

export interface QueueView {
  runs: QueuedRunView[]
  jobs: WaitingJobView[]
  /** Triggers that could not start, newest first, with why. */
  failed: Array<{ queueId: number; workflowFile: string; submittedAt: number; error: string }>
}

/** What a trigger was recorded as. */
export interface TriggeredView {
  queueId: number
  workflowFile: string
  priority: Priority
}

/** One `workflow_dispatch` input, as a form shows it. */
export interface WorkflowInputView {
  name: string
  type: 'string' | 'boolean' | 'choice' | 'number' | 'environment'
  required: boolean
  default: string | number | boolean | null
  options: string[]
  description: string | null
}

/** A workflow the console knows: run before, or in a folder the user added. */
export interface WorkflowView {
  file: string
  /** Null when the file could not be read or parsed. */
  name: string | null
  /** Events it is triggered by (`on:`). */
  events: string[]
  inputs: WorkflowInputView[]
  /** file:line:col: message lines; empty when it is valid. */
  problems: string[]
  /** Why the console knows it: a folder added, or an earlier run. */
  source: 'folder' | 'history'
  /** Secrets it names (GITHUB_TOKEN aside). */
  secrets: string[]
  /** Those of them the farm has not stored: empty in a run from the console, as GitHub leaves a missing secret. */
  missingSecrets: string[]
  /** The class its runs are queued in unless the trigger chooses (env.YARDMASTER_PRIORITY); null: normal. */
  priority: Priority | null
}

/** A stored secret as clients see it: never its value. */
export interface SecretView {
  name: string
  /** Epoch ms of the last set. */
  updatedAt: number
}
