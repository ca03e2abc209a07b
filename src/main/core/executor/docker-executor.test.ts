/**
 * DockerExecutor through real dockerode talking HTTP to a stand-in engine in this process
 * (test/support/docker-containers.ts), so the requests it builds are the real ones: what the
 * engine is asked to create, what it is given (the exec's command line and environment, which
 * carry the step's files), and what the executor makes of its answers. A real dockerd: test/integration.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { FarmNode } from '../farm/farm-model'
import { DockerExecutor, ImageUnavailableError } from './docker-executor'
import type { JobEnvironment, JobSetup, StepCommand } from './job-environment'
import { JobSetupError } from './job-failures'
import { farmNode } from '../../../../test/support/farm-node'
import {
  startContainerEngine,
  type ContainerEngine,
  type ContainerEngineOptions,
  type CreateBody,
  type EngineCall,
} from '../../../../test/support/docker-containers'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

const ALPINE = { 'alpine:3.20': {} }

async function engineWith(opts: ContainerEngineOptions = {}): Promise<ContainerEngine> {
  const e = await startContainerEngine({ images: ALPINE, ...opts })
  cleanup.push(() => e.close())
  return e
}

const node = (over: Partial<FarmNode> = {}) => farmNode('n1', over)
const jobSetup = (over: Partial<JobSetup> = {}): JobSetup => ({
  instance: 'inst-7f3a',
  runId: 42,
  jobKey: 'build',
  image: 'alpine:3.20',
  ...over,
})
const live = () => new AbortController().signal

async function prepare(
  e: ContainerEngine,
  over: Partial<JobSetup> = {},
  nodeOver: Partial<FarmNode> = {},
  signal = live(),
): Promise<{ job: JobEnvironment; progress: string[] }> {
  const progress: string[] = []
  const job = await new DockerExecutor(e.docker, node(nodeOver)).prepare(
    jobSetup(over),
    (m) => progress.push(m),
    signal,
  )
  return { job, progress }
}

/** Runs a step, collecting its output; `onChunk` sees each chunk as it comes. */
async function step(
  job: JobEnvironment,
  cmd: Partial<StepCommand> = {},
  opts: { signal?: AbortSignal; onChunk?: () => void } = {},
) {
  let stdout = ''
  let stderr = ''
  const code = await job.runStep(
    { script: 'echo hi', shell: null, env: {}, workingDirectory: null, ...cmd },
    (stream, d) => {
      if (stream === 'stdout') stdout += d.toString()
      else stderr += d.toString()
      opts.onChunk?.()
    },
    opts.signal ?? live(),
  )
  return { code, stdout, stderr }
}

const bodyOf = (c: EngineCall) => JSON.parse(c.body.toString()) as CreateBody
const creates = (e: ContainerEngine) =>
  e.calls.filter((c) => c.method === 'POST' && c.path === '/containers/create').map(bodyOf)
/** The files a step's exec carries in its environment, put back together, and its env without them. */
function delivered(config: { Env?: string[] }) {
  const env = Object.fromEntries(
    (config.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  )
  const join = (name: string) =>
    Object.keys(env)
      .filter((k) => k.startsWith(`${name}_`))
      .sort((a, b) => Number(a.slice(name.length + 1)) - Number(b.slice(name.length + 1)))
      .map((k) => env[k])
      .join('')
  const own = Object.entries(env).filter(([k]) => !/^YARDMASTER_(SCRIPT|LAUNCHER|STATE)_\d+$/.test(k))
  return {
    script: join('YARDMASTER_SCRIPT'),
    launcher: join('YARDMASTER_LAUNCHER'),
    state: join('YARDMASTER_STATE'),
    env: own.map(([k, v]) => `${k}=${v}`),
  }
}

describe('DockerExecutor.prepare', () => {
  it('refuses a job without an image on a node without defaultImage, asking the engine nothing', async () => {
    const e = await engineWith()
    const err = await prepare(e, { image: null }).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(JobSetupError)
    expect((err as Error).message).toBe(
      'job build has no "container:" image and node n1 has no defaultImage; set one of them',
    )
    expect(e.calls).toEqual([])
  })

  it("uses the node's defaultImage when the job names none", async () => {
    const e = await engineWith({ images: { 'debian:12': {} } })
    await prepare(e, { image: null }, { defaultImage: 'debian:12' })
    expect(creates(e).map((c) => c.Image)).toEqual(['debian:12'])
  })

  it('creates and starts a labelled keep-alive container in /workspace, without the job environment', async () => {
    const e = await engineWith()
    const { job, progress } = await prepare(e)
    const [body] = creates(e)
    expect(body).toEqual({
      Image: 'alpine:3.20',
      Cmd: ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'],
      WorkingDir: '/workspace',
      // Only the workspace: every step's exec carries the job's environment.
      Env: ['GITHUB_WORKSPACE=/workspace'],
      Labels: {
        'io.yardmaster.managed': 'true',
        'io.yardmaster.instance': 'inst-7f3a',
        'io.yardmaster.run': '42',
        'io.yardmaster.job': 'build',
      },
      // No binds, extra hosts or limits unless asked for.
      HostConfig: { AutoRemove: false },
    })
    const c = e.containers[0]!
    expect(c.running).toBe(true)
    expect(e.log()).toEqual([
      'GET /images/alpine:3.20/json',
      'POST /containers/create',
      `POST /containers/${c.id}/start`,
    ])
    expect(job).toMatchObject({
      workspace: '/workspace',
      temp: '/tmp/yardmaster',
      description: `container ${c.id.slice(0, 12)}`,
    })
    expect(progress).toEqual([])
  })

  it("turns container.options' limits into engine limits", async () => {
    const e = await engineWith()
    await prepare(e, { resources: { cpus: 1.5, memoryBytes: 512 * 1024 ** 2, gpus: 2 } })
    await prepare(e, { resources: { cpus: null, memoryBytes: null, gpus: 'all' } })
    await prepare(e, { resources: { cpus: 0.25, memoryBytes: null, gpus: null } })
    expect(creates(e).map((c) => c.HostConfig)).toEqual([
      {
        AutoRemove: false,
        NanoCpus: 1_500_000_000,
        Memory: 536_870_912,
        DeviceRequests: [{ Driver: '', Count: 2, Capabilities: [['gpu']] }],
      },
      { AutoRemove: false, DeviceRequests: [{ Driver: '', Count: -1, Capabilities: [['gpu']] }] },
      { AutoRemove: false, NanoCpus: 250_000_000 },
    ])
  })

  it('pulls an image the node lacks, with the registry login in the auth header, not the URL', async () => {
    const e = await engineWith({ images: {}, registry: { 'ghcr.io/acme/ci:2': { config: {} } } })
    const { progress } = await prepare(e, {
      image: 'ghcr.io/acme/ci:2',
      credentials: { username: 'bot', password: 'pw-9f2c1e' },
    })
    const pull = e.calls.find((c) => c.path === '/images/create')!
    expect(Object.fromEntries(pull.query)).toEqual({ fromImage: 'ghcr.io/acme/ci', tag: '2' })
    const auth = Buffer.from(String(pull.headers['x-registry-auth']), 'base64url').toString()
    expect(JSON.parse(auth)).toEqual({ username: 'bot', password: 'pw-9f2c1e' })
    for (const c of e.calls) expect(c.query.toString() + c.path).not.toContain('pw-9f2c1e')
    expect(progress).toEqual(['image ghcr.io/acme/ci:2 is not on n1; pulling it'])
    expect(e.log()).toEqual([
      'GET /images/ghcr.io/acme/ci:2/json',
      'POST /images/create',
      'POST /containers/create',
      `POST /containers/${e.containers[0]!.id}/start`,
    ])
  })

  it('pulls without a login header when the job gives no credentials', async () => {
    const e = await engineWith({ images: {}, registry: { 'alpine:3.20': { config: {} } } })
    await prepare(e)
    expect(e.calls.find((c) => c.path === '/images/create')!.headers['x-registry-auth']).toBeUndefined()
  })

  it('says an image the registry refuses is unavailable, with what to do, and creates nothing', async () => {
    const e = await engineWith({ images: {} })
    const err = await prepare(e, { image: 'acme/nosuch:1' }).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(ImageUnavailableError)
    expect(err).toBeInstanceOf(JobSetupError)
    const message = (err as Error).message
    expect(message).toMatch(
      /^image acme\/nosuch:1 is not on node n1 \(ci@n1\.lab:22\) and could not be pulled \(/,
    )
    expect(message).toContain(
      "pull access denied for acme/nosuch, repository does not exist or may require 'docker login'",
    )
    expect(message).toContain(
      'Load it there (docker save acme/nosuch:1 | ssh <node> docker load), or use an image the node has.',
    )
    expect(e.containers).toEqual([])
  })

  it('says an image is unavailable when the pull fails after it began (an error line in the progress stream)', async () => {
    const detail = 'no matching manifest for linux/amd64 in the manifest list entries'
    const e = await engineWith({ images: {}, registry: { 'acme/arm-only:1': { streamError: detail } } })
    const err = await prepare(e, { image: 'acme/arm-only:1' }).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(ImageUnavailableError)
    expect((err as Error).message).toContain(`could not be pulled (${detail}). Load it there`)
    expect(e.containers).toEqual([])
  })

  it("passes the engine's own failure to look at an image through, without pulling", async () => {
    const e = await engineWith({
      fail: (c) =>
        c.path.startsWith('/images/') ? { status: 500, message: 'layer store is corrupt' } : null,
    })
    const err = await prepare(e).catch((x: unknown) => x)
    expect(err).not.toBeInstanceOf(JobSetupError)
    expect(err).toMatchObject({ statusCode: 500, message: expect.stringContaining('layer store is corrupt') })
    expect(e.log()).toEqual(['GET /images/alpine:3.20/json'])
  })

  it('creates nothing once the signal is aborted', async () => {
    const e = await engineWith()
    const ac = new AbortController()
    ac.abort()
    await expect(prepare(e, {}, {}, ac.signal)).rejects.toThrow()
    expect(e.containers).toEqual([])
  })

  it("starts services in the job container's network, reachable by name, pulling what the node lacks", async () => {
    const e = await engineWith({
      images: { ...ALPINE, 'postgres:16': {} },
      registry: { 'redis:7': { config: {} } },
    })
    const { job, progress } = await prepare(e, {
      services: [
        {
          name: 'db',
          image: 'postgres:16',
          env: { POSTGRES_DB: 'app' },
          volumes: ['pgdata:/var/lib/postgresql/data'],
          credentials: null,
          command: 'postgres -c fsync=off',
          entrypoint: null,
        },
        {
          name: 'cache',
          image: 'redis:7',
          env: {},
          volumes: [],
          credentials: { username: 'u', password: 'p' },
          command: null,
          entrypoint: '/usr/local/bin/redis-server',
        },
      ],
    })
    expect(progress).toEqual([
      'image redis:7 is not on n1; pulling it',
      'starting service db (postgres:16)',
      'starting service cache (redis:7)',
    ])
    const [main, db, cache] = creates(e)
    const [jobC, dbC, cacheC] = e.containers
    expect(main!.HostConfig!.ExtraHosts).toEqual(['db:127.0.0.1', 'cache:127.0.0.1'])
    const labels = main!.Labels
    expect(db).toEqual({
      Image: 'postgres:16',
      Cmd: ['sh', '-c', 'postgres -c fsync=off'],
      Env: ['POSTGRES_DB=app'],
      Labels: { ...labels, 'io.yardmaster.service': 'db' },
      HostConfig: { NetworkMode: `container:${jobC!.id}`, Binds: ['pgdata:/var/lib/postgresql/data'] },
    })
    expect(cache).toEqual({
      Image: 'redis:7',
      Entrypoint: ['/usr/local/bin/redis-server'],
      Env: [],
      Labels: { ...labels, 'io.yardmaster.service': 'cache' },
      HostConfig: { NetworkMode: `container:${jobC!.id}` },
    })
    expect(e.containers.map((c) => c.running)).toEqual([true, true, true])
    const pull = e.calls.find((c) => c.path === '/images/create')!
    expect(JSON.parse(Buffer.from(String(pull.headers['x-registry-auth']), 'base64url').toString())).toEqual({
      username: 'u',
      password: 'p',
    })

    // dispose: the services first (they live in the job container's network), then the job's.
    await job.dispose()
    const removals = e.calls.filter((c) => c.method === 'DELETE')
    expect(removals.map((c) => c.path)).toEqual([
      `/containers/${dbC!.id}`,
      `/containers/${cacheC!.id}`,
      `/containers/${jobC!.id}`,
    ])
    expect(removals.map((c) => c.query.get('force'))).toEqual(['true', 'true', 'true'])
    expect(e.containers.every((c) => c.removed)).toBe(true)
  })

  it('removes every container it made when a service fails to start, and says why', async () => {
    const e: ContainerEngine = await engineWith({
      images: { ...ALPINE, 'postgres:16': {}, 'redis:7': {} },
      fail: (c) =>
        c.path.endsWith('/start') &&
        e.containers.find((x) => c.path.includes(x.id))?.config.Image === 'redis:7'
          ? { status: 500, message: 'driver failed programming external connectivity' }
          : null,
    })
    const service = (name: string, image: string) => ({
      name,
      image,
      env: {},
      volumes: [],
      credentials: null,
      command: null,
      entrypoint: null,
    })
    const err = await prepare(e, {
      services: [service('db', 'postgres:16'), service('cache', 'redis:7')],
    }).catch((x: unknown) => x)
    expect((err as Error).message).toContain('driver failed programming external connectivity')
    const [jobC, dbC, cacheC] = e.containers
    expect(
      e.calls.filter((c) => c.method === 'DELETE').map((c) => `${c.path}?force=${c.query.get('force')}`),
    ).toEqual([
      `/containers/${dbC!.id}?force=true`,
      `/containers/${cacheC!.id}?force=true`,
      `/containers/${jobC!.id}?force=true`,
    ])
    expect(e.containers.every((c) => c.removed)).toBe(true)
  })

  it('removes the job container when it cannot be started', async () => {
    const e = await engineWith({
      fail: (c) => (c.path.endsWith('/start') ? { status: 500, message: 'OCI runtime create failed' } : null),
    })
    await expect(prepare(e)).rejects.toThrow(/OCI runtime create failed/)
    expect(e.containers).toHaveLength(1)
    expect(e.containers[0]!.removed).toBe(true)
  })
})

describe('DockerExecutor.prepare: bind mounts', () => {
  it("refuses host paths the node's allowedHostPaths do not open, before the engine is asked anything", async () => {
    const e = await engineWith()
    const err = await prepare(
      e,
      {
        volumes: [
          '/etc:/host-etc',
          '/srv/cache/../../var/run/docker.sock:/var/run/docker.sock',
          'named:/data',
        ],
        services: [
          {
            name: 'db',
            image: 'postgres:16',
            env: {},
            volumes: ['/home/ci:/root'],
            credentials: null,
            command: null,
            entrypoint: null,
          },
        ],
      },
      { allowedHostPaths: ['/srv/cache'], source: { file: '/farm/farm.yml', line: 12, col: 5 } },
    ).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(JobSetupError)
    expect((err as Error).message).toBe(
      `the job's volumes would bind-mount "/etc", "/var/run/docker.sock", "/home/ci" from node n1, which its farm file does not allow: ` +
        'use a named volume (name:/path), or ' +
        'add "/etc" to allowedHostPaths of node n1 in /farm/farm.yml:12; ' +
        'add "/var/run/docker.sock" to allowedHostPaths of node n1 in /farm/farm.yml:12; ' +
        'add "/home/ci" to allowedHostPaths of node n1 in /farm/farm.yml:12',
    )
    expect(e.calls).toEqual([])
  })

  it('refuses every host path on a node that allows none', async () => {
    const e = await engineWith()
    await expect(prepare(e, { volumes: ['/tmp:/tmp'] })).rejects.toThrow(
      /would bind-mount "\/tmp" from node n1, .*allowedHostPaths of node n1$/,
    )
    expect(e.calls).toEqual([])
  })

  it('binds allowed host paths, named and anonymous volumes as given', async () => {
    const e = await engineWith()
    const volumes = ['/srv/npm:/root/.npm:ro', '/srv/cache:/cache', 'named:/data', '/scratch']
    await prepare(e, { volumes }, { allowedHostPaths: ['/srv/cache', '/srv/npm'] })
    expect(creates(e)[0]!.HostConfig!.Binds).toEqual(volumes)
  })
})

describe('ContainerJob.runStep', () => {
  it("hands the script and its launcher over in the exec's environment; its command line holds only paths", async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    const script = 'make -j4 all\n'
    await step(job, { script, shell: 'bash', env: { A: '1', B: 'two words' }, workingDirectory: 'sub' })
    // One request for the step: nothing is copied in beforehand.
    expect(e.calls.filter((c) => c.method === 'PUT')).toEqual([])
    const exec = e.calls.find((c) => c.method === 'POST' && c.path.endsWith('/exec'))!
    const body = bodyOf(exec)
    const folder = /mkdir -p (\/tmp\/yardmaster\/_steps\/[0-9a-f]{16}) /.exec(body.Cmd![2]!)![1]!
    expect(body.Cmd).toEqual([
      'sh',
      '-c',
      `(umask 077 && mkdir -p ${folder} && printf %s "$YARDMASTER_SCRIPT_0" > ${folder}/script.sh && ` +
        `printf %s "$YARDMASTER_LAUNCHER_0" > ${folder}/launch.sh) && ` +
        `unset YARDMASTER_SCRIPT_0 YARDMASTER_LAUNCHER_0 && exec sh ${folder}/launch.sh </dev/null`,
    ])
    expect(body).toMatchObject({ WorkingDir: '/workspace', AttachStdout: true, AttachStderr: true })
    const files = delivered(body)
    expect(files.env).toEqual(['A=1', 'B=two words', 'GITHUB_WORKSPACE=/workspace'])
    expect(files.script).toBe(script)
    expect(files.launcher).toContain(`trap 'rm -rf ${folder}' EXIT`)
    expect(files.launcher).toContain('cd /workspace/sub || ym_end 1')
    expect(files.launcher).toContain(`bash --noprofile --norc -eo pipefail ${folder}/script.sh </dev/null`)
  })

  it("keeps a step's record in the container: its output through tees, and the checkpoint it was given as state.json", async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    expect(job.records).toBe('/tmp/yardmaster/_record')
    const checkpoint = JSON.stringify({ v: 1, step: 3, addedEnv: { TOKEN: 'from-step-2' } })
    await step(job, { record: '/tmp/yardmaster/_record/3', checkpoint })
    const body = bodyOf(e.calls.find((c) => c.method === 'POST' && c.path.endsWith('/exec'))!)
    expect(body.Cmd![2]).toMatch(
      /mkdir -p \/tmp\/yardmaster\/_steps\/[0-9a-f]{16} \/tmp\/yardmaster\/_record\/3 /,
    )
    expect(body.Cmd![2]).toContain('printf %s "$YARDMASTER_STATE_0" > /tmp/yardmaster/_record/3/state.json')
    expect(body.Cmd![2]).not.toContain('from-step-2')
    const files = delivered(body)
    expect(files.state).toBe(checkpoint)
    expect(files.launcher).toContain('exec tee -a "$ym_r/out"')
  })

  it("keeps an absolute working directory, defaults to the workspace, and GITHUB_WORKSPACE is the container's", async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    await step(job, { workingDirectory: '/opt/src', env: { GITHUB_WORKSPACE: '/home/runner/work' } })
    await step(job)
    const [first, second] = e.execs.map((x) => delivered(x.config))
    expect(first!.launcher).toContain('cd /opt/src || ym_end 1')
    expect(second!.launcher).toContain('cd /workspace || ym_end 1')
    expect(first!.env).toEqual(['GITHUB_WORKSPACE=/workspace'])
    // A fresh private folder per step.
    expect(e.execs[0]!.config.Cmd![2]).not.toBe(e.execs[1]!.config.Cmd![2])
  })

  it("keeps a secret out of every command line, container config and URL: only in the exec's env", async () => {
    const secret = 'ghp_8Zq2secretV4lue'
    const e = await engineWith()
    const { job } = await prepare(e)
    await step(job, {
      script: `curl -H "Authorization: token ${secret}" https://api.example/\n`,
      env: { GITHUB_TOKEN: secret, CI: 'true' },
      prelude: 'mkdir -p /tmp/yardmaster/_cmd',
      epilogue: 'cat /tmp/yardmaster/_cmd/1/env',
    })
    for (const c of e.calls) {
      expect(c.path + c.query.toString()).not.toContain(secret)
      if (c.path === '/containers/create') expect(c.body.toString()).not.toContain(secret)
    }
    for (const x of e.execs) expect(x.config.Cmd!.join(' ')).not.toContain(secret)
    const shown = JSON.stringify(await e.docker.getContainer(e.containers[0]!.id).inspect())
    expect(shown).not.toContain(secret)
    const files = delivered(e.execs[0]!.config)
    expect(files.env).toContain(`GITHUB_TOKEN=${secret}`)
    expect(files.script).toContain(secret)
  })

  it("hands stdout and stderr to the sink apart, and returns the exec's exit code", async () => {
    const big = 'x'.repeat(200_000)
    const e = await engineWith({
      onExec: (io) => {
        io.stdout('out 1\n')
        io.stderr('err 1\n')
        io.stdout(Buffer.from('out 2\n'))
        io.stderr(big)
        io.exit(3)
      },
    })
    const { job } = await prepare(e)
    expect(await step(job)).toEqual({ code: 3, stdout: 'out 1\nout 2\n', stderr: `err 1\n${big}` })
    expect(e.log().at(-1)).toBe(`GET /exec/${e.execs[0]!.id}/json`)
  })

  it('returns null without asking the engine anything when the signal is already aborted', async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    const before = e.calls.length
    const ac = new AbortController()
    ac.abort()
    expect(await step(job, {}, { signal: ac.signal })).toEqual({ code: null, stdout: '', stderr: '' })
    expect(e.calls).toHaveLength(before)
  })

  it('kills the container when aborted while the step runs, and resolves null', async () => {
    // The step prints, then runs until its container is killed.
    const e = await engineWith({ onExec: (io) => io.stdout('started\n') })
    const { job } = await prepare(e)
    const ac = new AbortController()
    const r = await step(job, {}, { signal: ac.signal, onChunk: () => ac.abort() })
    expect(r).toEqual({ code: null, stdout: 'started\n', stderr: '' })
    const id = e.containers[0]!.id
    expect(e.log()).toContain(`POST /containers/${id}/kill`)
    // Cancelled: no exit code asked for.
    expect(e.log()).not.toContain(`GET /exec/${e.execs[0]!.id}/json`)
  })

  it('kills the container when aborted while the step is being set up (its exec starts anyway)', async () => {
    const ac = new AbortController()
    const e = await engineWith({
      onCall: (c) => {
        if (c.method === 'POST' && c.path.endsWith('/exec')) ac.abort()
      },
      // Runs until its container is killed.
      onExec: (io) => io.stdout('started\n'),
    })
    const { job } = await prepare(e)
    const r = await step(job, {}, { signal: ac.signal })
    expect(r.code).toBeNull()
    expect(e.log()).toContain(`POST /containers/${e.containers[0]!.id}/kill`)
  })

  it('says the connection dropped when the output stream ends while the step is still running', async () => {
    const e = await engineWith({
      onExec: (io) => {
        io.stdout('half a line')
        io.drop()
      },
    })
    const { job } = await prepare(e)
    await expect(step(job)).rejects.toThrow(
      'the connection to the node dropped while the step was running (its output stream closed)',
    )
  })

  it("passes the engine's refusal to run a step through", async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    e.containers[0]!.running = false
    await expect(step(job)).rejects.toThrow(/is not running/)
  })
})

describe('ContainerJob.dispose', () => {
  it('removes the container by force', async () => {
    const e = await engineWith()
    const { job } = await prepare(e)
    await expect(job.dispose()).resolves.toBe(true)
    const [c] = e.containers
    expect(e.log().at(-1)).toBe(`DELETE /containers/${c!.id}`)
    expect(e.calls.at(-1)!.query.get('force')).toBe('true')
    expect(c!.removed).toBe(true)
  })

  it('never throws, and says when something may be left: the engine refused, or is gone', async () => {
    let refuse = false
    const e = await engineWith({
      images: { ...ALPINE, 'redis:7': {} },
      fail: (c) =>
        refuse && c.method === 'DELETE' ? { status: 500, message: 'device or resource busy' } : null,
    })
    const service = {
      name: 'r',
      image: 'redis:7',
      env: {},
      volumes: [],
      credentials: null,
      command: null,
      entrypoint: null,
    }
    const { job } = await prepare(e, { services: [service] })
    refuse = true
    await expect(job.dispose()).resolves.toBe(false)
    // Both removals were tried, the job container's although the service's failed.
    expect(e.calls.filter((c) => c.method === 'DELETE')).toHaveLength(2)
    const { job: other } = await prepare(e)
    await e.close()
    await expect(other.dispose()).resolves.toBe(false)
  })
})
