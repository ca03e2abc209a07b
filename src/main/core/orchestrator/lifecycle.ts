/**
 * Runs, jobs, attempts and steps as state machines: which moves are legal. The store refuses any other
 * when it writes a state (run-store.ts), so a bug shows as a clear error where it happens, not
 * as a run that is "running" forever. Staying in a state is always allowed (idempotent writes).
 *
 *   run:   queued ──▶ running ──▶ succeeded | failed | cancelled
 *            └──────────────────▶ failed | cancelled        (lost or cancelled before it started)
 *
 *   job:   pending ──▶ running ──▶ succeeded | failed | cancelled
 *            │  ▲         │
 *            │  └─────────┘  preempted: a hotfix took its slot; back to the queue, not failed
 *            └──▶ skipped | cancelled | failed   never started (its needs, its `if`, no node, lost)
 *            └──▶ succeeded                      taken from an earlier run by a re-run
 *
 *   attempt: (written when the job is given a node and a slot, before anything runs there)
 *          running ──▶ succeeded | failed | cancelled   the job's result, from this attempt
 *             ├──────▶ preempted   a hotfix took its slot: the job is pending again, a new attempt follows
 *             └──────▶ lost        the process running it died: the job is failed as lost (and the
 *                                  run requeued when it came from the queue)
 *
 *   a workflow job's group while its run goes on (in memory: its instances' rows hold what is recorded):
 *          waiting ──▶ acquiring ──▶ running ──▶ done      acquiring: waits for its concurrency group
 *             ├───────────────────▶ running
 *             └──▶ done   never had instances: skipped, cancelled, reused, or it could not be planned
 *          acquiring ──▶ done   cancelled while it waited for its group, or could not be planned
 *
 *   step:  pending ──▶ running ──▶ succeeded | failed | cancelled
 *            └──▶ skipped | cancelled | failed   never ran (the job stopped before it, or was lost)
 *          any ──▶ pending                       its job was preempted and starts over
 */
import type { AttemptState, JobState, RunState, StepState } from '../../../shared/model'

const RUN: Record<RunState, readonly RunState[]> = {
  queued: ['running', 'failed', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
}

const JOB: Record<JobState, readonly JobState[]> = {
  pending: ['running', 'skipped', 'cancelled', 'failed', 'succeeded'],
  running: ['succeeded', 'failed', 'cancelled', 'pending'],
  succeeded: [],
  failed: [],
  cancelled: [],
  skipped: [],
}

const ATTEMPT: Record<AttemptState, readonly AttemptState[]> = {
  running: ['succeeded', 'failed', 'cancelled', 'preempted', 'lost'],
  succeeded: [],
  failed: [],
  cancelled: [],
  preempted: [],
  lost: [],
}

export type GroupPhase = 'waiting' | 'acquiring' | 'running' | 'done'

const GROUP: Record<GroupPhase, readonly GroupPhase[]> = {
  waiting: ['acquiring', 'running', 'done'],
  acquiring: ['running', 'done'],
  running: ['done'],
  done: [],
}

const STEP: Record<StepState, readonly StepState[]> = {
  pending: ['running', 'skipped', 'cancelled', 'failed'],
  running: ['succeeded', 'failed', 'cancelled', 'pending'],
  succeeded: ['pending'],
  failed: ['pending'],
  cancelled: ['pending'],
  skipped: ['pending'],
}

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError'
}

function check<S extends string>(what: string, table: Record<S, readonly S[]>, from: S, to: S): void {
  if (from === to || table[from].includes(to)) return
  const legal = table[from]
  throw new IllegalTransitionError(
    `${what} cannot go from ${from} to ${to}` +
      (legal.length ? `; from ${from} it goes to ${legal.join(', ')}` : `: ${from} is final`),
  )
}

export const runTransition = (id: number, from: RunState, to: RunState) => check(`run ${id}`, RUN, from, to)
export const jobTransition = (id: number, from: JobState, to: JobState) => check(`job ${id}`, JOB, from, to)
export const attemptTransition = (id: number, from: AttemptState, to: AttemptState) =>
  check(`attempt ${id}`, ATTEMPT, from, to)
export const groupTransition = (key: string, from: GroupPhase, to: GroupPhase) =>
  check(`job group ${key}`, GROUP, from, to)
export const stepTransition = (id: number, from: StepState, to: StepState) =>
  check(`step ${id}`, STEP, from, to)
