import { useEffect } from 'react'
import { useStore } from 'zustand'
import type { AppStore } from './state/app-store'
import type { NodeStore } from './state/node-store'
import { NodesView } from './components/NodesView'
import { RunList } from './components/RunList'
import { RunView } from './components/RunView'
import { ViewTabs } from './components/ViewTabs'

export function App({ store, nodes }: { store: AppStore; nodes: NodeStore }) {
  const start = useStore(store, (s) => s.start)
  const startNodes = useStore(nodes, (s) => s.start)
  const info = useStore(store, (s) => s.info)
  const view = useStore(store, (s) => s.view)
  const connected = useStore(store, (s) => s.connected)
  const error = useStore(store, (s) => s.error)
  useEffect(() => start(), [start])
  useEffect(() => startNodes(), [startNodes])
  return (
    <div className="app">
      <header className="topbar">
        <h1>Yardmaster</h1>
        <ViewTabs store={store} nodes={nodes} />
        <span className="spacer" />
        {info && <span className="sub">farm: {info.farmFile ?? 'this machine (embedded default)'}</span>}
        <span className={connected ? 'conn ok' : 'conn lost'}>
          {connected ? 'connected' : 'reconnecting…'}
        </span>
      </header>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <main className="view" role="tabpanel" id={`panel-${view}`} aria-labelledby={`tab-${view}`}>
        {view === 'runs' ? (
          <div className="layout">
            <nav className="sidebar">
              <h2>Runs</h2>
              <RunList store={store} />
            </nav>
            <RunView store={store} />
          </div>
        ) : (
          <NodesView store={nodes} farmFile={info?.farmFile ?? null} />
        )}
      </main>
    </div>
  )
}
