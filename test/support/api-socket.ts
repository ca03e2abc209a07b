/**
 * A client of `yardmaster serve`'s WebSocket API, as the browser's is: the page's Origin and the
 * token cookie the page gets on its first visit. Calls by name; events kept and awaited.
 */
import WebSocket from 'ws'
import { cookieName } from '../../src/main/server/loopback-server'
import type { ApiEvents, Envelope, EventName } from '../../src/shared/api'
import type { Served } from './serve'

export interface ApiSocket {
  call(method: string, args?: unknown): Promise<Envelope<unknown>>
  /** The first event (already received, or to come) that `match` accepts; rejects after `ms`. */
  event<E extends EventName>(name: E, match: (p: ApiEvents[E]) => boolean, ms: number): Promise<ApiEvents[E]>
  close(): void
}

export async function apiSocket(served: Served): Promise<ApiSocket> {
  const ws = new WebSocket(served.origin.replace('http', 'ws') + '/api', {
    headers: {
      Origin: served.origin,
      Cookie: `${cookieName(Number(new URL(served.origin).port))}=${served.token}`,
    },
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`API refused: HTTP ${res.statusCode}`)))
  })
  let nextId = 1
  const pending = new Map<number, (e: Envelope<unknown>) => void>()
  const events: Array<{ event: string; payload: unknown }> = []
  const waiters = new Set<() => void>()
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as {
      id?: number
      event?: string
      payload?: unknown
    } & Envelope<unknown>
    if (msg.event !== undefined) {
      events.push({ event: msg.event, payload: msg.payload })
      for (const w of waiters) w()
      return
    }
    const { id, ...envelope } = msg
    pending.get(id!)?.(envelope as Envelope<unknown>)
    pending.delete(id!)
  })
  return {
    call: (method, args = {}) =>
      new Promise((resolve) => {
        const id = nextId++
        pending.set(id, resolve)
        ws.send(JSON.stringify({ id, method, args }))
      }),
    event: (name, match, ms) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const hit = events.find((e) => e.event === name && match(e.payload as ApiEvents[typeof name]))
          if (!hit) return false
          clearTimeout(timer)
          waiters.delete(check)
          resolve(hit.payload as ApiEvents[typeof name])
          return true
        }
        const check = () => void look()
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no ${name} event as expected within ${ms} ms (got ${events.length} events)`))
        }, ms)
        if (!look()) waiters.add(check)
      }),
    close: () => ws.close(),
  }
}
