/**
 * What a workflow may mount from a node. `container.volumes` and services' `volumes` are Docker
 * bind mounts when their source is a host path: unchecked, any workflow could mount `/` or the
 * engine's socket of every node. Host paths are refused unless the node's `allowedHostPaths` in
 * the farm file opens them; named volumes (`name:/path`) and anonymous ones (`/path`) need no
 * permission. Pure: the planner, the scheduler's verdicts and the executor all ask here.
 */
import { posix } from 'node:path'
import { entries, isSequence, positionOf, type TemplateToken } from '../workflow/actions-syntax'
import type { FarmNode } from '../farm/farm-model'

/** The host path a volume spec mounts (`source:target[:mode]` with an absolute source), or null. */
export function hostPathOf(spec: string): string | null {
  const parts = spec.split(':')
  if (parts.length < 2) return null // `/data`: an anonymous volume at that container path
  const source = parts[0]!
  return source.startsWith('/') ? posix.normalize(source) : null
}

/**
 * Is `path` one of the allowed paths (`/` allows every path)? Exactly one, not one under it: the
 * engine follows symlinks in a bind's source, so a job that may write in an allowed folder could
 * leave `allowed/x -> /` there for a later job to mount, were what lies under it allowed too.
 */
export function hostPathAllowed(path: string, allowed: readonly string[]): boolean {
  const p = posix.normalize(path).replace(/(.)\/+$/, '$1')
  return allowed.some((a) => a === '/' || p === a)
}

/** The host paths among some volume specs that the node does not allow. */
export function refusedHostPaths(
  specs: readonly string[],
  node: Pick<FarmNode, 'allowedHostPaths'>,
): string[] {
  const out: string[] = []
  for (const spec of specs) {
    const path = hostPathOf(spec)
    if (path !== null && !hostPathAllowed(path, node.allowedHostPaths ?? []) && !out.includes(path))
      out.push(path)
  }
  return out
}

/** What to change to allow a host path on a node: the setting, and where the node is declared. */
export function allowHint(path: string, node: Pick<FarmNode, 'name' | 'source'>): string {
  const where = node.source ? ` in ${node.source.file}:${node.source.line}` : ''
  return `add "${path}" to allowedHostPaths of node ${node.name}${where}`
}

export interface VolumeAt {
  /** `container.volumes[0]`, `services.db.volumes[1]`. */
  field: string
  line: number
  col: number
}

/**
 * Where each volume of a job is written, by field and index, for messages that point at it:
 * `container.volumes[i]` and `services.<name>.volumes[i]`.
 */
export function volumePositions(container: TemplateToken | null, services: TemplateToken | null): VolumeAt[] {
  const out: VolumeAt[] = []
  const add = (mapping: TemplateToken | undefined, prefix: string) => {
    const volumes = entries(mapping).find((e) => e.key === 'volumes')?.value
    if (!volumes || !isSequence(volumes)) return
    ;[...volumes].forEach((item, i) => out.push({ field: `${prefix}.volumes[${i}]`, ...positionOf(item) }))
  }
  add(container ?? undefined, 'container')
  for (const s of entries(services ?? undefined)) add(s.value, `services.${s.key}`)
  return out
}
