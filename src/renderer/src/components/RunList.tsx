import { useStore } from 'zustand'
import type { AppStore } from '../state/app-store'
import { duration, when } from '../format'
import { StateBadge } from './StateBadge'

export function RunList({ store }: { store: AppStore }) {
  const runs = useStore(store, (s) => s.runs)
  const selected = useStore(store, (s) => s.selectedRunId)
  const select = useStore(store, (s) => s.selectRun)
  if (!runs.length) {
    return (
      <div className="empty">
        <p>No runs yet.</p>
        <p>
          Start one from a terminal: <code>yardmaster run resources/pipelines/hello.yml</code>
        </p>
      </div>
    )
  }
  return (
    <ul className="run-list" aria-label="Runs">
      {runs.map((r) => (
        <li key={r.id}>
          <button
            className={r.id === selected ? 'run selected' : 'run'}
            onClick={() => select(r.id)}
            data-run-id={r.id}
          >
            <span className="run-title">
              <span className="run-id">#{r.id}</span> {r.workflowName}
            </span>
            <span className="run-meta">
              <StateBadge state={r.state} />
              <span>{when(r.startedAt ?? r.createdAt)}</span>
              <span>{duration(r.startedAt, r.finishedAt)}</span>
            </span>
          </button>
        </li>
      ))}
    </ul>
  )
}
