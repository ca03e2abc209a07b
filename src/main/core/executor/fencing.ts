/**
 * Fencing: an attempt whose node stopped answering (or whose orchestrator died) may still be
 * running there. Before the node takes new work, whatever such attempts left on it is stopped
 * and removed, so one job never runs to completion twice, and its late output never mixes with
 * the attempt that replaced it. The marks live in the history (attempts.fence), so whichever
 * process next gives the node work does it.
 */
import type { RunStore } from '../store/run-store'
import type { NodeExecutor } from './job-environment'

/** The fence now running per node of a history: jobs starting together on a node share one. */
const inFlight = new WeakMap<RunStore, Map<string, Promise<void>>>()

/**
 * Fences every marked attempt of `node`; throws (the node takes no work) when one cannot be.
 * Callers that come while a fence of the node runs wait for it, then fence what was marked since.
 */
export async function fenceLeftovers(
  store: RunStore,
  node: string,
  executor: NodeExecutor,
  signal: AbortSignal,
  say: (message: string) => void,
): Promise<void> {
  let running = inFlight.get(store)
  if (!running) inFlight.set(store, (running = new Map()))
  for (;;) {
    const current = running.get(node)
    if (!current) break
    await settledOrAborted(current, signal)
  }
  if (!store.fencesOn(node).length) return
  const mine = fenceAll(store, node, executor, signal, say)
  running.set(node, mine)
  try {
    await mine
  } finally {
    if (running.get(node) === mine) running.delete(node)
  }
}

/** Resolves when `p` settles, however it does; rejects when `signal` aborts first. */
function settledOrAborted(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    void p
      .catch(() => {})
      .then(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      })
  })
}

async function fenceAll(
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
