/** The farm's secrets, write-only: names are listed, values set or deleted, never sent back. */
import { MAX_SECRET_BYTES } from '../core/secrets/secret-store'
import type { BackendContext } from './backend'
import { requireString } from './validate-args'

export function secretHandlers({ secrets }: BackendContext) {
  return {
    'secrets.list': () => secrets.list(),
    'secrets.set': (args: { name: string; value: string }) => {
      secrets.set(requireString(args, 'name', 200), requireString(args, 'value', MAX_SECRET_BYTES + 1))
      return secrets.list()
    },
    'secrets.delete': (args: { name: string }) => {
      secrets.delete(requireString(args, 'name', 200))
      return secrets.list()
    },
  }
}
