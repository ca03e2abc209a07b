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

export function StateBadge({ state }: { state: RunState | JobState | StepState }) {
  return (
    <span className={`badge state-${state}`} title={state}>
      <span aria-hidden="true">{SYMBOL[state] ?? '?'}</span> {state}
    </span>
  )
}
