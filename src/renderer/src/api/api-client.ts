/**
 * The renderer's one way to the backend. Two transports, one interface (ApiClient): Electron
 * IPC through the preload bridge, or a WebSocket to `yardmaster serve`. Views never know which.
 */
import {
  ApiError,
  type ApiClient,
  type ApiEvents,
  type Envelope,
  type EventName,
  type MethodArgs,
  type MethodName,
  type MethodResult,
  type YardmasterBridge,
} from '../../../shared/api'

type AnyListener = (payload: unknown) => void

class Listeners {
  private readonly byEvent = new Map<string, Set<AnyListener>>()
  add(event: string, l: AnyListener): () => void {
    let set = this.byEvent.get(event)
    if (!set) this.byEvent.set(event, (set = new Set()))
    set.add(l)
    return () => set.delete(l)
  }
  emit(event: string, payload: unknown): void {
    for (const l of this.byEvent.get(event) ?? []) l(payload)
  }
}

function unwrap<T>(envelope: Envelope<unknown>): T {
  if (envelope.ok) return envelope.result as T
  throw new ApiError(envelope.error.name, envelope.error.message)
}

export function ipcClient(bridge: YardmasterBridge): ApiClient {
  const listeners = new Listeners()
  bridge.on((event, payload) => listeners.emit(event, payload))
  return {
    call: async <M extends MethodName>(method: M, args: MethodArgs<M>) =>
      unwrap<MethodResult<M>>(await bridge.invoke(method, args)),
    on: <E extends EventName>(event: E, l: (p: ApiEvents[E]) => void) =>
      listeners.add(event, l as AnyListener),
  }
}

/** Connection state of the WebSocket client, for the status bar. */
export type ConnectionListener = (connected: boolean) => void

/**
 * WebSocket client with reconnection. Its auth is the HttpOnly cookie the server set when the
 * page was opened with the token, so this code never sees the token. After a reconnect it
 * emits `reconnected` so views take a fresh snapshot.
 */
export function webSocketClient(
  url: string,
  onConnection: ConnectionListener = () => {},
): ApiClient & {
  onReconnect(l: () => void): () => void
} {
  const listeners = new Listeners()
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  const queue: string[] = []
  let nextId = 1
  let ws: WebSocket | null = null
  let delay = 250
  let everOpened = false

  const connect = () => {
    ws = new WebSocket(url)
    ws.onopen = () => {
      delay = 250
      onConnection(true)
      for (const m of queue.splice(0)) ws?.send(m)
      if (everOpened) listeners.emit('__reconnected', null)
      everOpened = true
    }
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data)) as {
        id?: number
        event?: string
        payload?: unknown
      } & Envelope<unknown>
      if (msg.event) return listeners.emit(msg.event, msg.payload)
      const w = waiting.get(msg.id ?? -1)
      if (!w) return
      waiting.delete(msg.id!)
      try {
        w.resolve(unwrap(msg))
      } catch (err) {
        w.reject(err as Error)
      }
    }
    ws.onclose = () => {
      onConnection(false)
      for (const [, w] of waiting)
        w.reject(new ApiError('Disconnected', 'the connection to Yardmaster was lost'))
      waiting.clear()
      setTimeout(connect, delay)
      delay = Math.min(delay * 2, 5000)
    }
  }
  connect()

  return {
    call: <M extends MethodName>(method: M, args: MethodArgs<M>) =>
      new Promise<MethodResult<M>>((resolve, reject) => {
        const id = nextId++
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
        const msg = JSON.stringify({ id, method, args })
        if (ws?.readyState === WebSocket.OPEN) ws.send(msg)
        else queue.push(msg)
      }),
    on: <E extends EventName>(event: E, l: (p: ApiEvents[E]) => void) =>
      listeners.add(event, l as AnyListener),
    onReconnect: (l: () => void) => listeners.add('__reconnected', l),
  }
}
