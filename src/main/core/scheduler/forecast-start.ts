/**
 * When each waiting job is expected to start: the farm's slots are played forward in the order
 * of service. A slot frees when the job on it is expected to end (its start plus its forecast);
 * each waiting job takes the earliest slot among the nodes that fit it, and holds it for its own
 * forecast. Pure, and as good as the forecasts: a job with no history counts `unknownMs`.
 */
import { whyNot } from './capability-match'
import { requirementKey, type QueuedJob, type RunningJob, type SchedNode } from './schedule'

export function forecastStarts(
  now: number,
  order: readonly QueuedJob[],
  nodes: readonly SchedNode[],
  running: readonly RunningJob[],
  unknownMs = 60_000,
): Map<string, number> {
  // Per node, the time each of its slots frees, earliest first.
  const free = new Map<string, number[]>()
  for (const n of nodes) {
    if (n.refuses !== null) continue
    const ends = running
      .filter((r) => r.node === n.node.name)
      .map((r) => Math.max(now, r.startedAt + (r.expectedMs ?? unknownMs)))
    const slots = Math.max(n.slots, ends.length)
    const times = [...ends, ...Array.from({ length: Math.max(0, slots - ends.length) }, () => now)]
    free.set(n.node.name, times.sort((a, b) => a - b).slice(0, Math.max(1, n.slots)))
  }
  const fits = new Map<string, SchedNode[]>()
  const out = new Map<string, number>()
  for (const job of order) {
    const key = requirementKey(job.requirements)
    let fit = fits.get(key)
    if (!fit)
      fits.set(
        key,
        (fit = nodes.filter((n) => free.has(n.node.name) && !whyNot(job.requirements, n.node).length)),
      )
    let best: { node: string; at: number } | null = null
    for (const n of fit) {
      if (job.only && !job.only.has(n.node.name)) continue
      const at = free.get(n.node.name)![0]!
      if (!best || at < best.at) best = { node: n.node.name, at }
    }
    if (!best) continue
    out.set(job.id, best.at)
    const times = free.get(best.node)!
    times[0] = best.at + (job.expectedMs ?? unknownMs)
    times.sort((a, b) => a - b)
  }
  return out
}
