import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import type { YardmasterBridge } from '../../shared/api'
import { ipcClient, webSocketClient } from './api/api-client'
import { createAppStore } from './state/app-store'
import { createNodeStore } from './state/node-store'
import { createQueueStore } from './state/queue-store'
import { App } from './App'
import './styles.css'

declare global {
  interface Window {
    yardmaster?: YardmasterBridge
  }
}

// Inside Electron the preload provides the bridge; in a browser we talk to `yardmaster serve`.
function makeStores() {
  if (window.yardmaster) {
    const client = ipcClient(window.yardmaster)
    return { store: createAppStore(client), nodes: createNodeStore(client), queue: createQueueStore(client) }
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  let store: ReturnType<typeof createAppStore> | null = null
  const client = webSocketClient(`${scheme}://${location.host}/api`, (c) => store?.getState().setConnected(c))
  store = createAppStore(client, client.onReconnect)
  return {
    store,
    nodes: createNodeStore(client, client.onReconnect),
    queue: createQueueStore(client, client.onReconnect),
  }
}

const { store, nodes, queue } = makeStores()

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App store={store} nodes={nodes} queue={queue} />
  </StrictMode>,
)
