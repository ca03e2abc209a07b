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
