/**
 * What the orchestrator knows of a job before each of its steps, kept with the step on its node
 * (StepCommand.checkpoint, the record's state.json): the orchestrator that takes the job over
 * after a crash reads it there, with the step's record, and goes on from where the job stood.
 * It lives with the job, not in the history, because it holds what the job's steps hold too
 * (values added to $GITHUB_ENV, masks added with ::add-mask::), which may be secrets.
 */
import type { Json } from '../workflow/expressions'

export interface JobCheckpoint {
  v: 1
  /** The step it comes before (its index), and that step's file-command nonce. */
  step: number
  nonce: string
  /** When the job started (its timeout counts from then). */
  startedAt: number
  /** The `steps` context so far. */
  steps: Record<string, Json>
  /** What earlier steps added to $GITHUB_ENV and $GITHUB_PATH. */
  addedEnv: Record<string, string>
  addedPath: string[]
  jobFailed: boolean
  cancelled: boolean
  /** The job's first failing step so far. */
  failure: { step: number; code: number | null; why: string; nodes: boolean } | null
  failedImageId: string | null
  /** Values steps masked with ::add-mask:: (the run's secrets are the orchestrator's to know). */
  masks: string[]
}

/** The checkpoint as the record kept it, or an error saying what is wrong with it. */
export function parseCheckpoint(text: string): JobCheckpoint {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new Error(`the step's state.json is not JSON: ${(e as Error).message}`)
  }
  const c = value as Partial<JobCheckpoint> | null
  if (!c || typeof c !== 'object' || c.v !== 1)
    throw new Error(`the step's state.json is not a version 1 checkpoint`)
  const problems = [
    typeof c.step === 'number' && Number.isInteger(c.step) && c.step >= 0 ? null : 'step',
    typeof c.nonce === 'string' && /^[0-9a-f]+$/.test(c.nonce) ? null : 'nonce',
    typeof c.startedAt === 'number' ? null : 'startedAt',
    isObject(c.steps) ? null : 'steps',
    isObject(c.addedEnv) && Object.values(c.addedEnv).every((v) => typeof v === 'string') ? null : 'addedEnv',
    Array.isArray(c.addedPath) && c.addedPath.every((p) => typeof p === 'string') ? null : 'addedPath',
    typeof c.jobFailed === 'boolean' ? null : 'jobFailed',
    typeof c.cancelled === 'boolean' ? null : 'cancelled',
    c.failure === null || isObject(c.failure) ? null : 'failure',
    c.failedImageId === null || typeof c.failedImageId === 'string' ? null : 'failedImageId',
    Array.isArray(c.masks) && c.masks.every((m) => typeof m === 'string') ? null : 'masks',
  ].filter((p): p is string => p !== null)
  if (problems.length) throw new Error(`the step's state.json has a bad ${problems.join(', ')}`)
  return c as JobCheckpoint
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
