/**
 * Copies an image between Docker engines without a registry: the source engine's `docker save`
 * stream (GET /images/{name}/get) is piped straight into the target's `docker load`
 * (POST /images/load), both over their pooled connections, so nothing touches a disk on the way
 * and memory stays flat whatever the image's size. Air-gapped farms (and the lab) need this.
 */
import { Transform, type TransformCallback } from 'node:stream'
import type Docker from 'dockerode'
import type { ImageCopyView } from '../../../shared/model'

/** An engine and the name to use for it in messages (a node name, or `local`). */
export interface NamedEngine {
  name: string
  docker: Docker
}

export interface CopyProgress {
  bytes: number
  /** The image's size as its source reports it; the stream is close to that. Null when unknown. */
  expectedBytes: number | null
}

export interface CopyImageOptions {
  /** Called as bytes flow (at most every `progressEveryMs`) and once at the end. */
  onProgress?: (p: CopyProgress) => void
  /** @default 200 */
  progressEveryMs?: number
  signal?: AbortSignal
}

/** Thrown when the source engine does not have the image asked for. */
export class ImageNotOnSourceError extends Error {
  constructor(
    readonly image: string,
    readonly source: string,
  ) {
    super(
      `image ${image} is not on ${source}, so it cannot be copied from there. ` +
        `See what ${source} has with: yardmaster node ${source} images`,
    )
    this.name = 'ImageNotOnSourceError'
  }
}

/** Thrown when the target engine refused or garbled the image. */
export class ImageLoadError extends Error {
  constructor(image: string, target: string, detail: string) {
    super(`loading image ${image} into ${target} failed: ${detail}`)
    this.name = 'ImageLoadError'
  }
}

export async function copyImage(
  from: NamedEngine,
  to: NamedEngine,
  image: string,
  opts: CopyImageOptions = {},
): Promise<ImageCopyView> {
  const t0 = performance.now()
  const names = { image, from: from.name, to: to.name }
  const source = await inspectOrNull(from.docker, image)
  if (!source) throw new ImageNotOnSourceError(image, from.name)
  const present = await inspectOrNull(to.docker, image)
  if (present?.Id === source.Id)
    return { ...names, outcome: 'present', bytes: 0, ms: 0, imageId: source.Id, replacedImageId: null }
  opts.signal?.throwIfAborted()

  const counter = new ByteCounter(opts.progressEveryMs ?? 200, (bytes) =>
    opts.onProgress?.({ bytes, expectedBytes: source.Size ?? null }),
  )
  const tar = (await from.docker.getImage(image).get()) as NodeJS.ReadableStream & {
    destroy(e?: Error): void
  }
  // Whatever ends the copy early (cancel, a refused load, a dropped connection) must also end
  // both streams, or the save channel stays open on a paused stream. Without an error: the
  // failure is already on its way to the caller, and an 'error' event nobody awaits would crash.
  const abandon = () => {
    tar.destroy()
    counter.destroy()
  }
  opts.signal?.addEventListener('abort', abandon, { once: true })
  try {
    tar.on('error', (e: Error) => counter.destroy(e))
    tar.pipe(counter)
    const response = (await to.docker.loadImage(counter, {
      quiet: true,
      abortSignal: opts.signal,
    })) as NodeJS.ReadableStream
    const problem = loadProblem(await readAll(response))
    if (problem) throw new ImageLoadError(image, to.name, problem)
  } catch (e) {
    abandon()
    throw e
  } finally {
    opts.signal?.removeEventListener('abort', abandon)
  }
  opts.signal?.throwIfAborted()
  counter.report(true)

  // Trust the target's word, not the stream: the same image ID means the same config and layers.
  const loaded = await inspectOrNull(to.docker, image)
  if (loaded?.Id !== source.Id)
    throw new ImageLoadError(
      image,
      to.name,
      loaded
        ? `it holds ${loaded.Id} after the load, not ${source.Id}`
        : 'the image is not there after the load',
    )
  return {
    ...names,
    outcome: 'copied',
    bytes: counter.bytes,
    ms: Math.round(performance.now() - t0),
    imageId: source.Id,
    replacedImageId: present?.Id ?? null,
  }
}

async function inspectOrNull(docker: Docker, image: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(image).inspect()
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return null
    throw e
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  for await (const chunk of stream) text += String(chunk)
  return text
}

/** The engine answers a load with JSON messages; a failure is one with `error`. */
export function loadProblem(body: string): string | null {
  for (const line of body.split('\n')) {
    if (!line.trim()) continue
    try {
      const m = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } }
      if (m.error || m.errorDetail) return m.errorDetail?.message ?? m.error ?? 'unknown error'
    } catch {
      // Not JSON: older engines answer a quiet load with plain text; only JSON errors count.
    }
  }
  return null
}

/** Passes bytes through, counting them and reporting at most every `everyMs`. */
class ByteCounter extends Transform {
  bytes = 0
  private last = 0

  constructor(
    private readonly everyMs: number,
    private readonly onBytes: (bytes: number) => void,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.report(false)
    done(null, chunk)
  }

  report(final: boolean): void {
    const now = performance.now()
    if (!final && now - this.last < this.everyMs) return
    this.last = now
    this.onBytes(this.bytes)
  }
}
