/**
 * Which nodes can take a job, and why the others cannot. Pure: the scheduler decides, the
 * runner does.
 */
import type { FarmNode } from '../farm/farm-model'
import { formatSize, NO_NEEDS, type ResourceNeeds } from '../workflow/container-options'
import { hostPathAllowed } from './bind-mounts'

/** Labels of `runsOn` the node does not carry (matching is case-insensitive, as on GitHub). */
function missingLabels(runsOn: readonly string[], labels: readonly string[]): string[] {
  const have = new Set(labels.map((l) => l.toLowerCase()))
  return [...new Set(runsOn.map((l) => l.toLowerCase()))].filter((l) => !have.has(l))
}

/**
 * A node as matching sees it: its capability set's labels (declared, probed, engine) and whether
 * it can be reached now. Health states and resources will join here.
 */
export interface MatchableNode {
  name: string
  labels: readonly string[]
  /** Why the node cannot be reached now; null when it can. */
  unreachable: string | null
}

export type NodeVerdict = { node: string; can: true } | { node: string; can: false; reasons: string[] }

/**
 * For every node, in farm order: can it take a job that `runs-on` these labels, and if not, every
 * reason why (`lacks label gpu`, `unreachable: …`), so one answer explains the whole farm.
 */
export function whoCanTake(runsOn: readonly string[], nodes: readonly MatchableNode[]): NodeVerdict[] {
  return nodes.map((n) => {
    const reasons = missingLabels(runsOn, n.labels).map((l) => `lacks label ${l}`)
    if (n.unreachable !== null) reasons.push(`unreachable: ${n.unreachable}`)
    return reasons.length ? { node: n.name, can: false, reasons } : { node: n.name, can: true }
  })
}

/**
 * The candidate with the most free slots (ties: farm order), or null when all are full.
 * `busy` counts jobs running per node name.
 */
export function pickNode<N extends { name: string; slots: number }>(
  cands: readonly N[],
  busy: ReadonlyMap<string, number>,
): N | null {
  let best: N | null = null
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

/** What a job's `runs-on` asks of a node once platform labels (ubuntu-latest...) are resolved. */
export interface Requirements {
  labels: string[]
  /** From `container.options`: --cpus, --memory, --gpus. */
  resources: ResourceNeeds
  /** The platform's image, when a runs-on label named a platform. */
  image: string | null
  /** Platforms are images: only docker nodes can serve them. */
  docker: boolean
  /** Host paths the job's container and services bind-mount: a node must allow each (bind-mounts.ts). */
  hostPaths: string[]
}

export function requirementsOf(
  runsOn: readonly string[],
  platforms: Readonly<Record<string, { image: string; labels: string[] }>>,
  resources: ResourceNeeds = NO_NEEDS,
  hostPaths: readonly string[] = [],
): Requirements {
  const labels: string[] = []
  let image: string | null = null
  for (const label of runsOn) {
    const p = platforms[label.toLowerCase()]
    if (!p) labels.push(label)
    else {
      image ??= p.image
      labels.push(...p.labels)
    }
  }
  // A job that asks for GPUs needs a node that has them.
  if (resources.gpus !== null) labels.push('gpu')
  return {
    labels: [...new Set(labels.map((l) => l.toLowerCase()))],
    resources,
    image,
    docker: image !== null,
    hostPaths: [...hostPaths],
  }
}

/** Nodes that meet the requirements, in farm order. */
export function nodesFor(req: Requirements, nodes: readonly FarmNode[]): FarmNode[] {
  return nodes.filter((n) => whyNot(req, n).length === 0)
}

/**
 * Every reason `node` cannot take a job with these requirements (labels it lacks, no containers,
 * too small); empty when it can. The one judgement behind `nodesFor`, `plan` and the messages.
 */
export function whyNot(req: Requirements, node: FarmNode): string[] {
  const why = missingLabels(req.labels, node.labels).map((l) => `lacks label ${l}`)
  if (req.docker && node.executor !== 'docker')
    why.push(
      req.image
        ? `runs no containers (the platform image ${req.image} needs docker)`
        : 'runs no containers (the job has services)',
    )
  why.push(...tooSmall(req.resources, node))
  if (node.executor === 'docker')
    for (const p of req.hostPaths)
      if (!hostPathAllowed(p, node.allowedHostPaths ?? []))
        why.push(`does not allow bind mounts of ${p} (allowedHostPaths)`)
  return why
}

/** What the node lacks for the job's --cpus and --memory (declared capacity; unknown fits). */
export function tooSmall(needs: ResourceNeeds, node: FarmNode): string[] {
  const why: string[] = []
  if (needs.cpus !== null && node.cpus != null && needs.cpus > node.cpus)
    why.push(`has ${node.cpus} cpus, the job asks for ${needs.cpus}`)
  if (needs.memoryBytes !== null && node.memoryBytes != null && needs.memoryBytes > node.memoryBytes) {
    why.push(`has ${formatSize(node.memoryBytes)} memory, the job asks for ${formatSize(needs.memoryBytes)}`)
  }
  return why
}

/** Why no node meets the requirements, node by node. */
export function explainRequirements(req: Requirements, nodes: readonly FarmNode[]): string {
  const lines = nodes.map(
    (n) => `${n.name} [${n.labels.join(', ')}] ${whyNot(req, n).join(', ') || 'is fine'}`,
  )
  return `no node can take [${req.labels.join(', ')}]${req.docker ? ' with docker' : ''}: ${lines.join('; ')}`
}
