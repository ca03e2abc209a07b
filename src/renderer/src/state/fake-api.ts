/** A fake ApiClient for unit tests of the stores: handlers by method, events on demand. */
import type { ApiClient, ApiEvents, ApiMethods, EventName, MethodName } from '../../../shared/api'

export function fakeApi(handlers: Partial<{ [M in MethodName]: ApiMethods[M] }>) {
  const listeners = new Map<string, Set<(p: unknown) => void>>()
  const calls: string[] = []
  const api: ApiClient = {
    call: async (method, args) => {
      calls.push(`${method} ${JSON.stringify(args)}`)
      const h = handlers[method] as ((a: unknown) => unknown) | undefined
      if (!h) throw new Error(`no fake for ${method}`)
      return h(args) as never
    },
    on: (event, l) => {
      const set = listeners.get(event) ?? new Set()
      listeners.set(event, set)
      set.add(l as (p: unknown) => void)
      return () => set.delete(l as (p: unknown) => void)
    },
  }
  const emit = <E extends EventName>(event: E, payload: ApiEvents[E]) =>
    listeners.get(event)?.forEach((l) => l(payload))
  return { api, emit, calls, listenerCount: () => [...listeners.values()].reduce((n, s) => n + s.size, 0) }
}

export const settle = () => new Promise((r) => setTimeout(r, 0))
