import { useStore } from 'zustand'
import type { AppStore, ViewName } from '../state/app-store'
import { needsAttention } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'
import type { QueueStore } from '../state/queue-store'

const VIEWS: Array<{ view: ViewName; label: string }> = [
  { view: 'runs', label: 'Runs' },
  { view: 'workflows', label: 'Workflows' },
  { view: 'queue', label: 'Queue' },
  { view: 'nodes', label: 'Nodes' },
]

/** The views, as tabs. Queue counts what waits; Nodes counts the nodes that need a look. */
export function ViewTabs({ store, nodes, queue }: { store: AppStore; nodes: NodeStore; queue: QueueStore }) {
  const view = useStore(store, (s) => s.view)
  const showView = useStore(store, (s) => s.showView)
  const attention = useStore(nodes, (s) => s.nodes.filter(needsAttention).length)
  const waiting = useStore(queue, (s) => s.queue.runs.length + s.queue.jobs.length)
  return (
    <div className="tabs" role="tablist" aria-label="Views">
      {VIEWS.map((v) => (
        <button
          key={v.view}
          role="tab"
          id={`tab-${v.view}`}
          aria-selected={view === v.view}
          aria-controls={`panel-${v.view}`}
          className={view === v.view ? 'tab selected' : 'tab'}
          onClick={() => showView(v.view)}
        >
          {v.label}
          {v.view === 'queue' && waiting > 0 && (
            <span className="tab-count" title={`${waiting} waiting`}>
              {waiting}
            </span>
          )}
          {v.view === 'nodes' && attention > 0 && (
            <span
              className="tab-count"
              title={`${attention} node${attention === 1 ? '' : 's'} not online and active`}
            >
              {attention}
            </span>
          )}
        </button>
      ))}
    </div>
  )
}
