import { useEffect } from 'react'
import { useStore } from 'zustand'
import type { AppStore } from './state/app-store'
import { RunList } from './components/RunList'
import { RunView } from './components/RunView'

export function App({ store }: { store: AppStore }) {
  const start = useStore(store, (s) => s.start)
  const info = useStore(store, (s) => s.info)
  const connected = useStore(store, (s) => s.connected)
  const error = useStore(store, (s) => s.error)
  useEffect(() => start(), [start])
  return (
    <div className="app">
      <header className="topbar">
        <h1>Yardmaster</h1>
        <span className="sub">build farm console</span>
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
      <main className="layout">
        <nav className="sidebar">
          <h2>Runs</h2>
          <RunList store={store} />
        </nav>
        <RunView store={store} />
      </main>
    </div>
  )
}
