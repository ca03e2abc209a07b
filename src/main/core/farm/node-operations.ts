/**
 * What an engineer does to one node, apart from running jobs: list its containers and images,
 * prune what Yardmaster left behind, make sure an image is there. Each takes an open node
 * (NodeHandle) and returns plain data (src/shared/model.ts), for the API, the CLI and the UI.
 */
import { pullImage } from './image-pull'
import type Docker from 'dockerode'
import type { ContainerView, ImageView, PruneReport } from '../../../shared/model'
import { LABEL_JOB, LABEL_MANAGED, LABEL_RUN } from '../executor/docker-executor'
import { describeNode, type FarmNode } from './farm-model'
import { copyImage, type CopyProgress, type NamedEngine } from './image-transfer'
import type { NodeHandle } from './node-handle'

/** Thrown when a Docker operation is asked of a node that runs jobs in a shell. */
export class NoEngineError extends Error {
  constructor(
    readonly node: FarmNode,
    what: string,
  ) {
    super(
      `node ${describeNode(node)} runs jobs in a shell (executor: shell), so it has no Docker engine to ${what}. ` +
        `Pick a node with executor: docker (yardmaster nodes shows each node's executor).`,
    )
    this.name = 'NoEngineError'
  }
}

export function engineOf(handle: NodeHandle, what: string): Docker {
  if (!handle.docker) throw new NoEngineError(handle.node, what)
  return handle.docker
}

const MANAGED = `${LABEL_MANAGED}=true`

export async function listContainers(handle: NodeHandle): Promise<ContainerView[]> {
  const docker = engineOf(handle, 'list containers of')
  const all = await docker.listContainers({ all: true })
  return all.map((c) => ({
    id: c.Id.slice(0, 12),
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    image: c.Image,
    state: c.State,
    status: c.Status,
    createdAt: c.Created * 1000,
    managed: c.Labels?.[LABEL_MANAGED] === 'true',
    runId: c.Labels?.[LABEL_RUN] ?? null,
    jobKey: c.Labels?.[LABEL_JOB] ?? null,
  }))
}

export async function listImages(handle: NodeHandle): Promise<ImageView[]> {
  const docker = engineOf(handle, 'list images of')
  const all = await docker.listImages()
  return all.map((i) => {
    const tags = (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>')
    return {
      id: i.Id.replace(/^sha256:/, '').slice(0, 12),
      tags,
      sizeBytes: i.Size,
      createdAt: i.Created * 1000,
      dangling: tags.length === 0,
    }
  })
}

export interface PruneOptions {
  /**
   * A managed container in state `created` younger than this is kept: a job on this or another
   * desktop may be about to start it. @default 300000 (5 minutes)
   */
  createdGraceMs?: number
  now?: number
}

/**
 * Removes what Yardmaster left behind and nothing else: stopped containers and unused volumes
 * labelled io.yardmaster.managed=true, and dangling images (untagged and unused, so no one can
 * refer to them by name). Running containers are never touched, whoever made them.
 */
export async function pruneNode(handle: NodeHandle, opts: PruneOptions = {}): Promise<PruneReport> {
  const docker = engineOf(handle, 'prune')
  const now = opts.now ?? Date.now()
  const grace = opts.createdGraceMs ?? 300_000
  const report: PruneReport = { containers: [], volumes: [], images: [], reclaimedBytes: 0, kept: [] }

  // The label filter runs on the engine; the check below is a second guard, not the only one.
  const stopped = await docker.listContainers({
    all: true,
    size: true,
    filters: { label: [MANAGED], status: ['created', 'exited', 'dead'] },
  })
  for (const c of stopped) {
    const name = (c.Names[0] ?? c.Id).replace(/^\//, '')
    if (c.Labels?.[LABEL_MANAGED] !== 'true') continue
    if (c.State === 'created' && now - c.Created * 1000 < grace) {
      report.kept.push({
        what: `container ${name}`,
        reason: `created ${Math.round((now - c.Created * 1000) / 1000)} s ago; a job may be about to start it`,
      })
      continue
    }
    try {
      // v: its anonymous volumes were made for it alone.
      await docker.getContainer(c.Id).remove({ v: true })
      report.containers.push({ id: c.Id.slice(0, 12), name })
      report.reclaimedBytes += (c as { SizeRw?: number }).SizeRw ?? 0
    } catch (e) {
      // 404: its job removed it meanwhile; 409: it started again or is being removed.
      const code = (e as { statusCode?: number }).statusCode
      if (code !== 404) report.kept.push({ what: `container ${name}`, reason: firstLine(e) })
    }
  }

  const { Volumes } = await docker.listVolumes({ filters: { label: [MANAGED] } })
  for (const v of Volumes ?? []) {
    if (v.Labels?.[LABEL_MANAGED] !== 'true') continue
    try {
      await docker.getVolume(v.Name).remove()
      report.volumes.push(v.Name)
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode
      if (code === 409) report.kept.push({ what: `volume ${v.Name}`, reason: 'in use by a container' })
      else if (code !== 404) report.kept.push({ what: `volume ${v.Name}`, reason: firstLine(e) })
    }
  }

  const images = await docker.pruneImages({ filters: { dangling: ['true'] } })
  for (const d of images.ImagesDeleted ?? []) if (d.Deleted) report.images.push(shortId(d.Deleted))
  report.reclaimedBytes += images.SpaceReclaimed ?? 0
  return report
}

export type EnsureImageOutcome =
  | { outcome: 'present' }
  | { outcome: 'pulled' }
  | { outcome: 'copied'; from: string; bytes: number; ms: number }

export interface EnsureImageOptions {
  /** Engines to copy from, in order of preference, when the registry cannot be reached. */
  sources?: NamedEngine[]
  /** Say what is being tried (for a progress line). */
  onStep?: (message: string) => void
  onProgress?: (p: CopyProgress) => void
  signal?: AbortSignal
}

/** Thrown when no way of getting the image onto the node worked; says what each attempt said. */
export class ImageUnobtainableError extends Error {
  constructor(node: FarmNode, image: string, attempts: string[]) {
    super(
      `image ${image} could not be put on node ${describeNode(node)}: ${attempts.join('; ')}. ` +
        `Copy it from a machine that has it: yardmaster node ${node.name} copy-image ${image} --from <node|local>`,
    )
    this.name = 'ImageUnobtainableError'
  }
}

/**
 * Makes sure `image` is on the node: nothing to do if it is there; else pull it (a registry may
 * be reachable); else copy it from the first source that has it (air-gapped farms).
 */
export async function ensureImage(
  target: NodeHandle,
  image: string,
  opts: EnsureImageOptions = {},
): Promise<EnsureImageOutcome> {
  const docker = engineOf(target, 'hold images')
  try {
    await docker.getImage(image).inspect()
    return { outcome: 'present' }
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw e
  }
  const attempts: string[] = []
  opts.onStep?.(`pulling ${image} on ${target.node.name}`)
  try {
    await pullImage(docker, image, { signal: opts.signal })
    return { outcome: 'pulled' }
  } catch (e) {
    opts.signal?.throwIfAborted()
    attempts.push(`pull failed (${firstLine(e)})`)
  }
  for (const source of opts.sources ?? []) {
    if (source.name === target.node.name) continue
    opts.onStep?.(`copying ${image} from ${source.name} to ${target.node.name}`)
    try {
      const r = await copyImage(source, { name: target.node.name, docker }, image, {
        onProgress: opts.onProgress,
        signal: opts.signal,
      })
      return { outcome: 'copied', from: source.name, bytes: r.bytes, ms: r.ms }
    } catch (e) {
      opts.signal?.throwIfAborted()
      attempts.push(`copy from ${source.name} failed (${firstLine(e)})`)
    }
  }
  if (!opts.sources?.length) attempts.push('no other engine was given to copy from')
  throw new ImageUnobtainableError(target.node, image, attempts)
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split('\n')[0]!.trim()
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}
