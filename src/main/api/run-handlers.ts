import type { BackendContext } from './backend'
import { requireInt, optionalInt } from './validate-args'

export function runHandlers({ store }: BackendContext) {
  return {
    'runs.list': (args: { limit?: number }) => store.listRuns(optionalInt(args, 'limit', 1, 1000) ?? 50),
    'runs.get': (args: { runId: number }) => store.getRun(requireInt(args, 'runId', 1)),
    'logs.get': (args: { runId: number; afterSeq?: number; limit?: number }) =>
      store.getLogs(
        requireInt(args, 'runId', 1),
        optionalInt(args, 'afterSeq', 0, Number.MAX_SAFE_INTEGER) ?? 0,
        optionalInt(args, 'limit', 1, 50_000) ?? 5000,
      ),
  }
}
