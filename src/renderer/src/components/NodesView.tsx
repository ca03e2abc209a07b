import { useEffect, useState } from 'react'
import { useStore } from 'zustand'
import type { NodeStore } from '../state/node-store'
import { NodeCard } from './NodeCard'
import { NodeDetail } from './NodeDetail'
import { ActionError, useAction } from './use-action'

/** The farm: every node with its live state on the left, the selected one on the right. */
export function NodesView({ store, farmFile }: { store: NodeStore; farmFile: string | null }) {
  const nodes = useStore(store, (s) => s.nodes)
  const loaded = useStore(store, (s) => s.loaded)
  const error = useStore(store, (s) => s.error)
  const series = useStore(store, (s) => s.series)
  const selected = useStore(store, (s) => s.selected)
  const select = useStore(store, (s) => s.select)
  const now = useNow(5000)
  const node = nodes.find((n) => n.name === selected) ?? null
  const reload = useAction(store.getState().reloadFarm)
  return (
    <div className="layout nodes-layout">
      <div className="sidebar node-list-panel">
        <div className="panel-head">
          <h2>Nodes</h2>
          {farmFile && (
            <button
              type="button"
              className="small-button"
              title={`Read ${farmFile} again, after editing it elsewhere`}
              disabled={reload.busy}
              onClick={() => void reload.run()}
            >
              {reload.busy ? 'Reloading…' : 'Reload farm file'}
            </button>
          )}
        </div>
        <ActionError error={reload.error} />
        {error && (
          <p className="action-error" role="alert">
            Could not load the nodes: {error}
          </p>
        )}
        {!loaded && <p className="empty">Loading the farm…</p>}
        {loaded && !error && !nodes.length && <p className="empty">The farm has no nodes.</p>}
        <ul className="node-list" aria-label="Nodes">
          {nodes.map((n) => (
            <li key={n.name}>
              <NodeCard
                node={n}
                points={series[n.name] ?? []}
                selected={n.name === selected}
                now={now}
                onSelect={() => select(n.name)}
              />
            </li>
          ))}
        </ul>
      </div>
      {node ? (
        <NodeDetail key={node.name} store={store} node={node} farmFile={farmFile} now={now} />
      ) : (
        <div className="empty">Select a node to see what can be done with it.</div>
      )}
    </div>
  )
}

/** The time, refreshed every `ms`: "since" figures and the charts' window move on without events. */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(t)
  }, [ms])
  return now
}
