/**
 * copyImage against fake engines: the save stream must reach the load intact, progress must
 * count it, and every way it can go wrong must end both streams and say what happened. The lab
 * integration test copies a real image between real engines.
 */
import { PassThrough, Readable } from 'node:stream'
import type Docker from 'dockerode'
import { describe, expect, it } from 'vitest'
import {
  copyImage,
  ImageLoadError,
  ImageNotOnSourceError,
  loadProblem,
  type CopyProgress,
} from './image-transfer'

const notFound = () => Promise.reject(Object.assign(new Error('no such image'), { statusCode: 404 }))
const CHUNKS = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(500, 3)]

function source(opts: { id?: string | null; stream?: Readable } = {}) {
  const tar = opts.stream ?? Readable.from(CHUNKS)
  const docker = {
    getImage: () => ({
      inspect: () =>
        opts.id === null ? notFound() : Promise.resolve({ Id: opts.id ?? 'sha256:aaa', Size: 3400 }),
      get: () => Promise.resolve(tar),
    }),
  }
  return { engine: { name: 'n1', docker: docker as unknown as Docker }, tar }
}

/** A target that takes the load body, answers with `answer`, and then holds `after` (or the loaded id). */
function target(
  opts: { before?: string | null; answer?: string; after?: string | null; loadFails?: Error } = {},
) {
  const received: Buffer[] = []
  let loaded = false
  const docker = {
    getImage: () => ({
      inspect: () => {
        const id = loaded ? (opts.after === undefined ? 'sha256:aaa' : opts.after) : (opts.before ?? null)
        return id ? Promise.resolve({ Id: id }) : notFound()
      },
    }),
    loadImage: async (body: NodeJS.ReadableStream, o: { quiet: boolean }) => {
      expect(o.quiet).toBe(true)
      if (opts.loadFails) throw opts.loadFails
      for await (const c of body) received.push(c as Buffer)
      loaded = true
      return Readable.from([opts.answer ?? '{"stream":"Loaded image: lab/x:1\\n"}\n'])
    },
  }
  return { engine: { name: 'n2', docker: docker as unknown as Docker }, received }
}

describe('copyImage', () => {
  it('streams the source save into the target load, byte for byte, and reports progress', async () => {
    const from = source()
    const to = target()
    const progress: CopyProgress[] = []
    const r = await copyImage(from.engine, to.engine, 'lab/x:1', {
      onProgress: (p) => progress.push(p),
      progressEveryMs: 0,
    })
    expect(Buffer.concat(to.received)).toEqual(Buffer.concat(CHUNKS))
    expect(r).toMatchObject({
      image: 'lab/x:1',
      from: 'n1',
      to: 'n2',
      outcome: 'copied',
      bytes: 3500,
      imageId: 'sha256:aaa',
      replacedImageId: null,
    })
    expect(progress.map((p) => p.bytes)).toEqual([1000, 3000, 3500, 3500])
    expect(progress.every((p) => p.expectedBytes === 3400)).toBe(true)
  })

  it('sends nothing when the target already has the same image', async () => {
    const to = target({ before: 'sha256:aaa' })
    const r = await copyImage(source().engine, to.engine, 'lab/x:1')
    expect(r).toMatchObject({ outcome: 'present', bytes: 0, imageId: 'sha256:aaa' })
    expect(to.received).toEqual([])
  })

  it('replaces another image of the same name, and says which one it untagged', async () => {
    const r = await copyImage(source().engine, target({ before: 'sha256:old' }).engine, 'lab/x:1')
    expect(r).toMatchObject({ outcome: 'copied', replacedImageId: 'sha256:old' })
  })

  it('refuses when the source does not have the image, saying how to see what it has', async () => {
    const err = await copyImage(source({ id: null }).engine, target().engine, 'lab/x:1').catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ImageNotOnSourceError)
    expect((err as Error).message).toBe(
      'image lab/x:1 is not on n1, so it cannot be copied from there. See what n1 has with: yardmaster node n1 images',
    )
  })

  it('passes an engine failure through as it is, rather than calling the image missing', async () => {
    const broken = Object.assign(
      new Error('(HTTP code 500) server error - write /var/lib/docker: read-only file system'),
      {
        statusCode: 500,
      },
    )
    const from = {
      name: 'n1',
      docker: { getImage: () => ({ inspect: () => Promise.reject(broken) }) } as unknown as Docker,
    }
    const to = target()
    await expect(copyImage(from, to.engine, 'lab/x:1')).rejects.toBe(broken)
    expect(to.received).toEqual([])
  })

  it('fails with the engine’s words when the load is refused', async () => {
    const answer = '{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n'
    const err = await copyImage(source().engine, target({ answer }).engine, 'lab/x:1').catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ImageLoadError)
    expect((err as Error).message).toBe('loading image lab/x:1 into n2 failed: unexpected EOF')
  })

  it('checks the target holds the very image afterwards', async () => {
    const wrong = await copyImage(source().engine, target({ after: 'sha256:zzz' }).engine, 'lab/x:1').catch(
      (e: unknown) => e,
    )
    expect((wrong as Error).message).toBe(
      'loading image lab/x:1 into n2 failed: it holds sha256:zzz after the load, not sha256:aaa',
    )
    const none = await copyImage(source().engine, target({ after: null }).engine, 'lab/x:1').catch(
      (e: unknown) => e,
    )
    expect((none as Error).message).toBe(
      'loading image lab/x:1 into n2 failed: the image is not there after the load',
    )
  })

  it('ends the save stream when the load request fails, so its channel is not left open', async () => {
    const tar = new PassThrough()
    tar.write(Buffer.alloc(10))
    const from = source({ stream: tar })
    const err = await copyImage(
      from.engine,
      target({ loadFails: new Error('channel closed') }).engine,
      'lab/x:1',
    ).catch((e: unknown) => e)
    expect((err as Error).message).toBe('channel closed')
    expect(tar.destroyed).toBe(true)
  })

  it('stops when cancelled, ending the save stream', async () => {
    const tar = new PassThrough()
    const abort = new AbortController()
    const to = target()
    const copying = copyImage(source({ stream: tar }).engine, to.engine, 'lab/x:1', { signal: abort.signal })
    tar.write(Buffer.alloc(100))
    await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await expect(copying).rejects.toThrow()
    expect(tar.destroyed).toBe(true)
  })

  it('does not start when already cancelled', async () => {
    const abort = new AbortController()
    abort.abort()
    const to = target()
    await expect(copyImage(source().engine, to.engine, 'lab/x:1', { signal: abort.signal })).rejects.toThrow()
    expect(to.received).toEqual([])
  })
})

describe('loadProblem', () => {
  it('finds the error among the engine’s messages', () => {
    expect(loadProblem('{"stream":"Loaded image: a:1\\n"}\n')).toBeNull()
    expect(loadProblem('')).toBeNull()
    expect(loadProblem('{"stream":"x"}\n{"error":"no space left on device"}\n')).toBe(
      'no space left on device',
    )
    expect(loadProblem('{"errorDetail":{"message":"detail wins"},"error":"short"}')).toBe('detail wins')
    expect(loadProblem('{"errorDetail":{}}')).toBe('unknown error')
  })

  it('ignores lines that are not JSON (older engines answer a quiet load in plain text)', () => {
    expect(loadProblem('Loaded image: a:1\n')).toBeNull()
  })
})
