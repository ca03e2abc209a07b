/**
 * What becomes of a run whose orchestrator died. One that came from the queue is queued again to
 * be taken over (queueTakeOver): the next console goes on with the same run, taking over the
 * attempts still running on their nodes. A run a terminal started is not: its user saw it stop.
 * requeueLost is for a run that cannot be taken over: queued again as a new run, taking the
 * results of the jobs that had finished.
 */
import type { LostRun } from '../store/claim-store'
import type { QueueStore } from '../store/queue-store'

/** The new queue entry's id, or null when the run did not come from the queue. */
export function requeueLost(queue: QueueStore, lost: LostRun, at: number): number | null {
  const entry = queue.ofRun(lost.runId)
  if (!entry) return null
  const trigger = { ...entry.trigger, reuseFrom: { runId: lost.runId, jobs: lost.finished } }
  return queue.add(entry.workflowFile, trigger, entry.priority, at).id
}

/** Queues the run to be taken over by the next console; the new entry's id, or null when it did not come from the queue. */
export function queueTakeOver(queue: QueueStore, runId: number, at: number): number | null {
  const entry = queue.ofRun(runId)
  if (!entry) return null
  return queue.add(entry.workflowFile, { ...entry.trigger, takeOver: { runId } }, entry.priority, at).id
}
