/**
 * Whose fault a failure was: the node's (infrastructure: the connection dropped, the engine
 * failed, the disk is full) or the job's (an image nobody has, a bad volume, a step that exits
 * non-zero). Only the node's count towards quarantine, and later towards retry on another node,
 * so when in doubt a failure is the job's: a typo in a workflow must not take nodes out.
 */
/** Errors that are the job's by construction: its setup asks for something the node lacks. */
export class JobSetupError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JobSetupError'
  }
}

/** The reason, when `e` was the node's fault; null when it was the job's. */
export function infrastructureReason(e: unknown): string | null {
  if (!(e instanceof Error)) return null
  if (e instanceof JobSetupError) return null
  const status = (e as { statusCode?: unknown }).statusCode
  // The engine answered: 4xx is about the request (the job's container spec), 5xx is the engine's.
  if (typeof status === 'number') return status >= 500 ? `the engine failed: ${firstLine(e.message)}` : null
  return firstLine(e.message)
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).slice(0, 300)
}

/** An error the node gave back while doing something for the job (as opposed to the job's own). */
export class NodeCallError extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause))
    this.name = 'NodeCallError'
  }
}
