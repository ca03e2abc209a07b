import type { JobState, RunState, StepState } from '../../../shared/model'

const SYMBOL: Record<string, string> = {
  queued: '◌',
  pending: '◌',
  running: '●',
  succeeded: '✓',
  failed: '✕',
  cancelled: '⊘',
  skipped: '↷',
}

/** A state; "cancelling" while a run or job asked to stop has not yet (`cancelling` is why). */
export function StateBadge({
  state,
  cancelling = null,
}: {
  state: RunState | JobState | StepState
  cancelling?: string | null
}) {
  if (cancelling)
    return (
      <span className="badge state-cancelling" title={`cancelling: ${cancelling}`}>
        <span aria-hidden="true">⊘</span> cancelling…
      </span>
    )
  return (
    <span className={`badge state-${state}`} title={state}>
      <span aria-hidden="true">{SYMBOL[state] ?? '?'}</span> {state}
    </span>
  )
}
