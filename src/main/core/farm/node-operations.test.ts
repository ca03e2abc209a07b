/**
 * Node operations against a fake engine: what is asked of it (filters, removal flags) and what
 * is decided from its answers. The lab integration tests check the same on real engines.
 */
import { PassThrough, Readable } from 'node:stream'
import Docker from 'dockerode'
import { describe, expect, it, vi } from 'vitest'
import { LocalCommandRunner } from '../executor/command-runner'
import type { FarmNode } from './farm-model'
import type { NodeHandle } from './node-handle'
import {
  ensureImage,
  ImageUnobtainableError,
  listContainers,
  listImages,
  NoEngineError,
  pruneNode,
} from './node-operations'
import { farmNode } from '../../../../test/support/farm-node'

const node = (executor: 'docker' | 'shell' = 'docker'): FarmNode =>
  farmNode('n1', { host: '10.0.0.1', executor })
const handle = (docker: unknown, executor: 'docker' | 'shell' = 'docker'): NodeHandle => ({
  node: node(executor),
  ssh: null,
  docker: docker as Docker,
  commands: new LocalCommandRunner(),
})
const httpError = (statusCode: number, message = `HTTP ${statusCode}`) =>
  Object.assign(new Error(message), { statusCode })

const NOW = 1_700_000_000_000
const container = (over: Record<string, unknown>) => ({
  Id: 'c0ffee0000000000000000',
  Names: ['/job'],
  Image: 'lab/busybox:1',
  State: 'exited',
  Status: 'Exited (0) 1 minute ago',
  Created: NOW / 1000 - 3600,
  Labels: { 'io.yardmaster.managed': 'true' },
  SizeRw: 100,
  ...over,
})

/** An engine whose list/remove calls are recorded; `removeFails` maps ids/names to HTTP codes. */
function fakeEngine(opts: {
  containers?: ReturnType<typeof container>[]
  volumes?: Array<{ Name: string; Labels: Record<string, string> | null }>
  removeFails?: Record<string, number>
  danglingDeleted?: string[]
}) {
  const removed: Array<{ id: string; opts: unknown }> = []
  const removedVolumes: string[] = []
  const calls: Record<string, unknown[]> = { listContainers: [], listVolumes: [], pruneImages: [] }
  const docker = {
    listContainers: vi.fn(
      (o: unknown) => (calls.listContainers!.push(o), Promise.resolve(opts.containers ?? [])),
    ),
    getContainer: (id: string) => ({
      remove: (o: unknown) => {
        const code = opts.removeFails?.[id]
        if (code) return Promise.reject(httpError(code, `removal of ${id} refused`))
        removed.push({ id, opts: o })
        return Promise.resolve()
      },
    }),
    listVolumes: (o: unknown) => (
      calls.listVolumes!.push(o),
      Promise.resolve({ Volumes: opts.volumes ?? [] })
    ),
    getVolume: (name: string) => ({
      remove: () => {
        const code = opts.removeFails?.[name]
        if (code) return Promise.reject(httpError(code))
        removedVolumes.push(name)
        return Promise.resolve()
      },
    }),
    pruneImages: (o: unknown) => (
      calls.pruneImages!.push(o),
      Promise.resolve({
        ImagesDeleted: (opts.danglingDeleted ?? []).flatMap((id) => [{ Untagged: 'x' }, { Deleted: id }]),
        SpaceReclaimed: 5000,
      })
    ),
  }
  return { docker, removed, removedVolumes, calls }
}

describe('shell nodes', () => {
  it('refuse Docker operations with a message that says why and what to do', async () => {
    const h = handle(null, 'shell')
    for (const op of [listContainers, listImages, pruneNode]) {
      const err = await op(h).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NoEngineError)
    }
    const err = (await pruneNode(h).catch((e: unknown) => e)) as Error
    expect(err.message).toBe(
      'node n1 (ci@10.0.0.1:22) runs jobs in a shell (executor: shell), so it has no Docker engine to prune. ' +
        "Pick a node with executor: docker (yardmaster nodes shows each node's executor).",
    )
  })
})

describe('listContainers', () => {
  it('lists all containers, marking ours by io.yardmaster.managed=true', async () => {
    const { docker, calls } = fakeEngine({
      containers: [
        container({
          Names: ['/ym-build'],
          Labels: { 'io.yardmaster.managed': 'true', 'io.yardmaster.run': '7', 'io.yardmaster.job': 'build' },
        }),
        container({ Id: 'beef', Names: ['/postgres'], State: 'running', Labels: {} }),
        container({ Id: 'cafe', Names: [], Labels: { 'io.yardmaster.managed': 'false' } }),
      ],
    })
    const list = await listContainers(handle(docker))
    expect(calls.listContainers).toEqual([{ all: true }])
    expect(list).toEqual([
      expect.objectContaining({
        id: 'c0ffee000000',
        name: 'ym-build',
        managed: true,
        runId: '7',
        jobKey: 'build',
      }),
      expect.objectContaining({
        id: 'beef',
        name: 'postgres',
        state: 'running',
        managed: false,
        runId: null,
      }),
      expect.objectContaining({ id: 'cafe', name: '', managed: false }),
    ])
    expect(list[0]!.createdAt).toBe(NOW - 3600_000)
  })
})

describe('listImages', () => {
  it('gives short ids, tags, and marks untagged images dangling', async () => {
    const docker = {
      listImages: () =>
        Promise.resolve([
          { Id: 'sha256:a608b6f58f465dd35ef27b9c', RepoTags: ['lab/busybox:1'], Size: 2e6, Created: 100 },
          { Id: 'sha256:98af29dd8dd44309a50d7e14', RepoTags: ['<none>:<none>'], Size: 3, Created: 200 },
          { Id: 'sha256:1111111111111111111111', RepoTags: null, Size: 4, Created: 300 },
        ]),
    }
    expect(await listImages(handle(docker))).toEqual([
      { id: 'a608b6f58f46', tags: ['lab/busybox:1'], sizeBytes: 2e6, createdAt: 100_000, dangling: false },
      { id: '98af29dd8dd4', tags: [], sizeBytes: 3, createdAt: 200_000, dangling: true },
      { id: '111111111111', tags: [], sizeBytes: 4, createdAt: 300_000, dangling: true },
    ])
  })
})

describe('pruneNode', () => {
  it('asks the engine only for stopped containers and volumes carrying our label, and only dangling images', async () => {
    const { docker, calls } = fakeEngine({})
    await pruneNode(handle(docker), { now: NOW })
    expect(calls.listContainers).toEqual([
      {
        all: true,
        size: true,
        filters: { label: ['io.yardmaster.managed=true'], status: ['created', 'exited', 'dead'] },
      },
    ])
    expect(calls.listVolumes).toEqual([{ filters: { label: ['io.yardmaster.managed=true'] } }])
    expect(calls.pruneImages).toEqual([{ filters: { dangling: ['true'] } }])
  })

  it('removes stopped containers of ours with their anonymous volumes, and reports what it reclaimed', async () => {
    const { docker, removed } = fakeEngine({
      containers: [
        container({ Id: 'aaa', Names: ['/a'] }),
        container({ Id: 'bbb', Names: ['/b'], State: 'dead' }),
      ],
      volumes: [{ Name: 'ym-cache', Labels: { 'io.yardmaster.managed': 'true' } }],
      danglingDeleted: ['sha256:98af29dd8dd44309a50d7e14'],
    })
    const report = await pruneNode(handle(docker), { now: NOW })
    expect(removed).toEqual([
      { id: 'aaa', opts: { v: true } },
      { id: 'bbb', opts: { v: true } },
    ])
    expect(report).toEqual({
      containers: [
        { id: 'aaa', name: 'a' },
        { id: 'bbb', name: 'b' },
      ],
      volumes: ['ym-cache'],
      images: ['98af29dd8dd4'],
      reclaimedBytes: 100 + 100 + 5000,
      kept: [],
    })
  })

  it('never removes what lacks our label, even if the engine filter let it through', async () => {
    const { docker, removed, removedVolumes } = fakeEngine({
      containers: [container({ Labels: { 'io.yardmaster.managed': 'false' } }), container({ Labels: null })],
      volumes: [
        { Name: 'theirs', Labels: {} },
        { Name: 'nolabels', Labels: null },
      ],
    })
    const report = await pruneNode(handle(docker), { now: NOW })
    expect(removed).toEqual([])
    expect(removedVolumes).toEqual([])
    expect(report.containers).toEqual([])
  })

  it('keeps a container of ours created moments ago (a job may be starting it), until the grace period ends', async () => {
    const fresh = container({ Id: 'new', Names: ['/new'], State: 'created', Created: NOW / 1000 - 30 })
    const { docker, removed } = fakeEngine({ containers: [fresh] })
    const report = await pruneNode(handle(docker), { now: NOW })
    expect(removed).toEqual([])
    expect(report.kept).toEqual([
      { what: 'container new', reason: 'created 30 s ago; a job may be about to start it' },
    ])
    const later = await pruneNode(handle(docker), { now: NOW, createdGraceMs: 10_000 })
    expect(later.containers).toEqual([{ id: 'new', name: 'new' }])
  })

  it('does not wait the grace period for exited containers', async () => {
    const { docker } = fakeEngine({ containers: [container({ Created: NOW / 1000 - 1 })] })
    expect((await pruneNode(handle(docker), { now: NOW })).containers).toHaveLength(1)
  })

  it('treats a container gone meanwhile as done, and keeps one the engine refuses to remove, saying why', async () => {
    const { docker } = fakeEngine({
      containers: [container({ Id: 'gone', Names: ['/gone'] }), container({ Id: 'busy', Names: ['/busy'] })],
      volumes: [
        { Name: 'used', Labels: { 'io.yardmaster.managed': 'true' } },
        { Name: 'vanished', Labels: { 'io.yardmaster.managed': 'true' } },
        { Name: 'odd', Labels: { 'io.yardmaster.managed': 'true' } },
      ],
      removeFails: { gone: 404, busy: 409, used: 409, vanished: 404, odd: 500 },
    })
    const report = await pruneNode(handle(docker), { now: NOW })
    expect(report.containers).toEqual([])
    expect(report.volumes).toEqual([])
    expect(report.kept).toEqual([
      { what: 'container busy', reason: 'removal of busy refused' },
      { what: 'volume used', reason: 'in use by a container' },
      { what: 'volume odd', reason: 'HTTP 500' },
    ])
  })
})

describe('ensureImage', () => {
  const pullStream = (error?: string) => {
    const s = new PassThrough()
    setImmediate(() => {
      s.end(JSON.stringify(error ? { error } : { status: 'Downloaded' }) + '\n')
    })
    return s
  }
  /** A target engine: inspect answers from `has`; pull succeeds or fails. */
  const target = (has: boolean, pullError?: string) => {
    const pull = vi.fn(() => Promise.resolve(pullStream(pullError)))
    const docker = {
      getImage: () => ({
        inspect: () => (has ? Promise.resolve({ Id: 'sha256:x' }) : Promise.reject(httpError(404))),
      }),
      pull,
      // dockerode's own: a pull that fails ends its stream with an error line, handed over as
      // output, not as an error.
      modem: {
        followProgress: (...a: unknown[]) =>
          (new Docker().modem.followProgress as (...b: unknown[]) => void)(...a),
      },
    }
    return { docker, pull }
  }

  it('does nothing when the image is there', async () => {
    const { docker, pull } = target(true)
    expect(await ensureImage(handle(docker), 'lab/busybox:1')).toEqual({ outcome: 'present' })
    expect(pull).not.toHaveBeenCalled()
  })

  it('pulls when a registry answers', async () => {
    const { docker, pull } = target(false)
    const steps: string[] = []
    expect(await ensureImage(handle(docker), 'debian:bookworm', { onStep: (s) => steps.push(s) })).toEqual({
      outcome: 'pulled',
    })
    expect(pull).toHaveBeenCalledWith('debian:bookworm', {})
    expect(steps).toEqual(['pulling debian:bookworm on n1'])
  })

  it('says what every attempt said when nothing works', async () => {
    const { docker } = target(false, 'dial tcp: lookup registry-1.docker.io: no such host')
    const missing = { inspect: () => Promise.reject(httpError(404)) }
    const err = await ensureImage(handle(docker), 'lab/x:1', {
      sources: [
        { name: 'n1', docker: docker as unknown as Docker }, // the target itself: skipped
        { name: 'n2', docker: { getImage: () => missing } as unknown as Docker },
      ],
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ImageUnobtainableError)
    expect((err as Error).message).toBe(
      'image lab/x:1 could not be put on node n1 (ci@10.0.0.1:22): ' +
        'pull failed (dial tcp: lookup registry-1.docker.io: no such host); ' +
        'copy from n2 failed (image lab/x:1 is not on n2, so it cannot be copied from there. See what n2 has with: yardmaster node n2 images). ' +
        'Copy it from a machine that has it: yardmaster node n1 copy-image lab/x:1 --from <node|local>',
    )
  })

  it('air-gapped: when the pull fails, copies the image from the first other engine that has it', async () => {
    const { docker } = target(false, 'dial tcp: lookup registry-1.docker.io: no such host')
    // The target holds the image once it has been loaded.
    let loaded = false
    const received: Buffer[] = []
    const withLoad = Object.assign(docker, {
      getImage: () => ({
        inspect: () => (loaded ? Promise.resolve({ Id: 'sha256:abc' }) : Promise.reject(httpError(404))),
      }),
      loadImage: async (body: NodeJS.ReadableStream) => {
        for await (const c of body) received.push(c as Buffer)
        loaded = true
        return Readable.from(['{"stream":"Loaded image: lab/x:1\\n"}\n'])
      },
    })
    const missing = { getImage: () => ({ inspect: () => Promise.reject(httpError(404)) }) }
    const has = {
      getImage: () => ({
        inspect: () => Promise.resolve({ Id: 'sha256:abc', Size: 6 }),
        get: () => Promise.resolve(Readable.from([Buffer.from('tar'), Buffer.from('ball')])),
      }),
    }
    const steps: string[] = []
    const r = await ensureImage(handle(withLoad), 'lab/x:1', {
      onStep: (s) => steps.push(s),
      sources: [
        { name: 'n2', docker: missing as unknown as Docker },
        { name: 'n3', docker: has as unknown as Docker },
      ],
    })
    expect(r).toMatchObject({ outcome: 'copied', from: 'n3', bytes: 7 })
    expect(Buffer.concat(received).toString()).toBe('tarball')
    expect(steps).toEqual([
      'pulling lab/x:1 on n1',
      'copying lab/x:1 from n2 to n1',
      'copying lab/x:1 from n3 to n1',
    ])
  })

  it('says no source was given when the pull fails and there is none', async () => {
    const { docker } = target(false, 'no such host')
    await expect(ensureImage(handle(docker), 'lab/x:1')).rejects.toThrow(
      'pull failed (no such host); no other engine was given to copy from.',
    )
  })

  it('passes engine errors other than "no such image" through', async () => {
    const docker = { getImage: () => ({ inspect: () => Promise.reject(httpError(500, 'engine broken')) }) }
    await expect(ensureImage(handle(docker), 'lab/x:1')).rejects.toThrow('engine broken')
  })
})
