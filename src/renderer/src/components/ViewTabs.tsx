import { useStore } from 'zustand'
import type { AppStore, ViewName } from '../state/app-store'
import { needsAttention } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'

const VIEWS: Array<{ view: ViewName; label: string }> = [
  { view: 'runs', label: 'Runs' },
  { view: 'nodes', label: 'Nodes' },
]

/** Runs | Nodes, as tabs. The Nodes tab counts the nodes that need a look. */
export function ViewTabs({ store, nodes }: { store: AppStore; nodes: NodeStore }) {
  const view = useStore(store, (s) => s.view)
  const showView = useStore(store, (s) => s.showView)
  const attention = useStore(nodes, (s) => s.nodes.filter(needsAttention).length)
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
