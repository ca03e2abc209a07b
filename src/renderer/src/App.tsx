import { useEffect } from 'react'
import { useStore } from 'zustand'
import type { AppStore } from './state/app-store'
import type { NodeStore } from './state/node-store'
import type { QueueStore } from './state/queue-store'
import { QueueView } from './components/queue/QueueView'
import { WorkflowsView } from './components/workflows/WorkflowsView'
import { NodesView } from './components/NodesView'
import { RunList } from './components/RunList'
import { RunView } from './components/RunView'
import { ViewTabs } from './components/ViewTabs'

export function App({ store, nodes, queue }: { store: AppStore; nodes: NodeStore; queue: QueueStore }) {
  const start = useStore(store, (s) => s.start)
  const startNodes = useStore(nodes, (s) => s.start)
  const startQueue = useStore(queue, (s) => s.start)
  const showView = useStore(store, (s) => s.showView)
  const selectRun = useStore(store, (s) => s.selectRun)
  const info = useStore(store, (s) => s.info)
  const view = useStore(store, (s) => s.view)
  const connected = useStore(store, (s) => s.connected)
  const error = useStore(store, (s) => s.error)
  useEffect(() => start(), [start])
  useEffect(() => startNodes(), [startNodes])
  useEffect(() => startQueue(), [startQueue])
  return (
    <div className="app">
      <header className="topbar">
        <h1>Yardmaster</h1>
        <ViewTabs store={store} nodes={nodes} queue={queue} />
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
            <RunView store={store} queue={queue} />
          </div>
        ) : view === 'workflows' ? (
          <WorkflowsView queue={queue} onQueued={() => showView('queue')} />
        ) : view === 'queue' ? (
          <QueueView
            queue={queue}
            onOpenRun={(runId) => {
              selectRun(runId)
              showView('runs')
            }}
          />
        ) : (
          <NodesView store={nodes} farmFile={info?.farmFile ?? null} />
        )}
      </main>
    </div>
  )
}
