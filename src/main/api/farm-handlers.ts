import type { NodeView } from '../../shared/model'
import type { BackendContext } from './backend'

export function farmHandlers({ farm }: BackendContext) {
  return {
    'farm.nodes': (): NodeView[] =>
      farm.nodes.map((n) => ({
        name: n.name,
        host: n.host,
        executor: n.executor,
        labels: n.labels,
        slots: n.slots,
      })),
  }
}
