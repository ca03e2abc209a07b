/**
 * Fencing: an attempt whose node stopped answering (or whose orchestrator died) may still be
 * running there. Before the node takes new work, whatever such attempts left on it is stopped
 * and removed, so one job never runs to completion twice, and its late output never mixes with
 * the attempt that replaced it. The marks live in the history (attempts.fence), so whichever
 * process next gives the node work does it.
 */
import type { RunStore } from '../store/run-store'
import type { NodeExecutor } from './job-environment'

/** Fences every marked attempt of `node`; throws (the node takes no work) when one cannot be. */
export async function fenceLeftovers(
  store: RunStore,
  node: string,
  executor: NodeExecutor,
  signal: AbortSignal,
  say: (message: string) => void,
): Promise<void> {
  for (const { attemptId, leftover: l } of store.fencesOn(node)) {
    try {
      await executor.fence(l, signal)
    } catch (e) {
      throw new Error(
        `could not stop what attempt ${l.attempt} of run ${l.runId} job ${l.jobKey} left on ${node}: ${(e as Error).message}`,
        { cause: e },
      )
    }
    store.fenced(attemptId)
    say(`stopped and removed what attempt ${l.attempt} of run ${l.runId} job ${l.jobKey} left on ${node}`)
  }
}
