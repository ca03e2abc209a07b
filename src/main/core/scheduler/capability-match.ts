/**
 * Which nodes can take a job, and why the others cannot. Pure: the scheduler decides, the
 * runner does.
 */
import type { FarmNode } from '../farm/farm-model'

/** Nodes carrying every label of `runsOn` (case-insensitive), in farm order. */
export function candidates(runsOn: readonly string[], nodes: readonly FarmNode[]): FarmNode[] {
  const wanted = runsOn.map((l) => l.toLowerCase())
  return nodes.filter((n) => wanted.every((l) => n.labels.includes(l)))
}

/** One line per node: what it lacks. */
export function explainNoMatch(runsOn: readonly string[], nodes: readonly FarmNode[]): string {
  const wanted = runsOn.map((l) => l.toLowerCase())
  const lines = nodes.map((n) => {
    const missing = wanted.filter((l) => !n.labels.includes(l))
    return `${n.name} [${n.labels.join(', ')}] lacks ${missing.join(', ')}`
  })
  return `no node carries all of [${runsOn.join(', ')}]: ${lines.join('; ')}`
}

/**
 * The candidate with the most free slots (ties: farm order), or null when all are full.
 * `busy` counts jobs running per node name.
 */
export function pickNode(cands: readonly FarmNode[], busy: ReadonlyMap<string, number>): FarmNode | null {
  let best: FarmNode | null = null
  let bestFree = 0
  for (const n of cands) {
    const free = n.slots - (busy.get(n.name) ?? 0)
    if (free > bestFree) {
      best = n
      bestFree = free
    }
  }
  return best
}
