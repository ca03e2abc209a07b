import { useStore } from 'zustand'
import { when } from '../format'
import type { NodeStore } from '../state/node-store'

/** The selected node's recent state changes, newest first. */
export function NodeEvents({ store }: { store: NodeStore }) {
  const events = useStore(store, (s) => s.events)
  const error = useStore(store, (s) => s.eventsError)
  if (error) return <p className="action-error">Could not load the events: {error}</p>
  if (!events.length) return <p className="muted small">No state changes recorded.</p>
  return (
    <ol className="events" aria-label="Recent events">
      {events.map((e, i) => (
        <li key={`${e.at}-${i}`}>
          <span className="t">{when(e.at)}</span>
          <span className="muted">{e.kind}</span>
          <span className="event-change" title={e.reason ?? undefined}>
            {e.from} → <strong>{e.to}</strong>
            {e.reason && <span className="muted"> ({e.reason})</span>}
          </span>
        </li>
      ))}
    </ol>
  )
}
