/**
 * What becomes of a run whose orchestrator died: when it came from the queue, it is queued again,
 * taking the results of the jobs that had finished from the lost run and running the others
 * (until recovery reattaches them instead). A run a terminal started is not: its user saw it stop.
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
