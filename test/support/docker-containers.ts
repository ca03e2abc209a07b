/**
 * A stand-in Docker engine that keeps images, containers and execs, for unit tests of what runs
 * jobs in containers (DockerExecutor) through real dockerode: just enough of the Engine API
 * (v1.41, paths with or without the version prefix) for what it calls. Image inspect and pull
 * (`POST /images/create`, a JSON progress stream), container create, start, inspect, kill and
 * remove, exec create, start (a multiplexed stdout/stderr stream)
 * and inspect. Every request is recorded with its body; nothing runs: each test says what an
 * exec does (`onExec`).
 */
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import Docker from 'dockerode'
import { startEngine, type FakeEngine } from './docker-engine'

/** One request the engine answered, with its whole body. */
export interface EngineCall {
  method: string
  /** Without the version prefix and the query. */
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  body: Buffer
}

/** What a container-create or exec-create body holds (the fields the tests look at). */
export interface CreateBody {
  Image?: string
  Cmd?: string[]
  Entrypoint?: string[]
  Env?: string[]
  WorkingDir?: string
  Labels?: Record<string, string>
  HostConfig?: Record<string, unknown>
  AttachStdout?: boolean
  AttachStderr?: boolean
  [key: string]: unknown
}

export interface FakeContainer {
  id: string
  /** The create request's body. */
  config: CreateBody
  running: boolean
  removed: boolean
}

export interface FakeExec {
  id: string
  container: FakeContainer
  /** The exec-create request's body. */
  config: CreateBody
  running: boolean
  exitCode: number | null
}

/** An exec's side of its output stream, for `onExec`. */
export interface ExecIO {
  exec: FakeExec
  stdout(data: string | Buffer): void
  stderr(data: string | Buffer): void
  /** The process exits with `code`: the stream ends. */
  exit(code: number): void
  /** The stream ends while the process goes on (the connection carrying it dropped). */
  drop(): void
}

/** What a pull of an image finds: the image (its config), or the registry's refusal. */
export type PullOutcome =
  | { config: { User?: string } }
  /** Refused before any progress: an HTTP error. */
  | { status: number; message: string }
  /** Refused after some progress: an error line in the progress stream, as dockerd does then. */
  | { streamError: string }

export interface ContainerEngineOptions {
  /** Images the engine has, by `name:tag`, with their config. */
  images?: Record<string, { User?: string }>
  /** What a pull of each `name:tag` gives; any other is refused with 404 as Docker Hub does. */
  registry?: Record<string, PullOutcome>
  /** What an exec does once started. @default exits 0 without output */
  onExec?: (io: ExecIO) => void
  /** An error to answer a request with instead (status and message); null answers it. */
  fail?: (call: EngineCall) => { status: number; message: string } | null
  /** Sees each request once its body is in, before it is answered. */
  onCall?: (call: EngineCall) => void
}

export interface ContainerEngine {
  /** dockerode talking HTTP to this engine. */
  docker: Docker
  engine: FakeEngine
  /** Every request of the API below, in order. */
  calls: EngineCall[]
  images: Map<string, { User?: string }>
  /** Every container created, removed ones included, in order. */
  containers: FakeContainer[]
  /** Every exec created, in order. */
  execs: FakeExec[]
  /** Calls as `METHOD path`, for order checks. */
  log(): string[]
  close(): Promise<void>
}

const STREAM = { stdout: 1, stderr: 2 } as const

/** One frame of Docker's multiplexed stream: type, three zero bytes, big-endian length, payload. */
export function frame(stream: keyof typeof STREAM, data: string | Buffer): Buffer {
  const payload = Buffer.from(data)
  const header = Buffer.alloc(8)
  header.writeUInt8(STREAM[stream], 0)
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

export async function startContainerEngine(opts: ContainerEngineOptions = {}): Promise<ContainerEngine> {
  const calls: EngineCall[] = []
  const images = new Map(Object.entries(opts.images ?? {}))
  const containers: FakeContainer[] = []
  const execs: FakeExec[] = []
  /** Open output streams of running execs, to end when their container is killed or removed. */
  const streams = new Map<FakeExec, ExecIO>()
  const newId = () => randomBytes(32).toString('hex')
  const liveContainer = (id: string) =>
    containers.find((c) => !c.removed && (c.id === id || c.id.startsWith(id)))

  const answer = (res: ServerResponse, status: number, body?: unknown) => {
    res.statusCode = status
    if (body === undefined) return void res.end()
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify(body))
  }
  const stopExecs = (c: FakeContainer) => {
    for (const [exec, io] of streams) if (exec.container === c) io.exit(137)
  }

  const handle = (call: EngineCall, res: ServerResponse): void => {
    const { method, path, query } = call
    const body = () => JSON.parse(call.body.toString() || '{}') as CreateBody
    let m: RegExpMatchArray | null
    if (method === 'GET' && (m = path.match(/^\/images\/(.+)\/json$/))) {
      const config = images.get(m[1]!)
      if (!config) return answer(res, 404, { message: `No such image: ${m[1]}` })
      return answer(res, 200, { Id: `sha256:${newId()}`, RepoTags: [m[1]], Config: { User: '', ...config } })
    }
    if (method === 'POST' && path === '/images/create') {
      const name = `${query.get('fromImage')}:${query.get('tag') ?? 'latest'}`
      const outcome = opts.registry?.[name] ?? {
        status: 404,
        message: `pull access denied for ${query.get('fromImage')}, repository does not exist or may require 'docker login'`,
      }
      if ('status' in outcome) return answer(res, outcome.status, { message: outcome.message })
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.write(
        `${JSON.stringify({ status: `Pulling from ${query.get('fromImage')}`, id: query.get('tag') })}\r\n`,
      )
      if ('streamError' in outcome) {
        const line = { errorDetail: { message: outcome.streamError }, error: outcome.streamError }
        return void res.end(`${JSON.stringify(line)}\r\n`)
      }
      images.set(name, outcome.config)
      return void res.end(`${JSON.stringify({ status: `Status: Downloaded newer image for ${name}` })}\r\n`)
    }
    if (method === 'POST' && path === '/containers/create') {
      const config = body()
      if (!config.Image || !images.has(config.Image))
        return answer(res, 404, { message: `No such image: ${config.Image}` })
      const c: FakeContainer = { id: newId(), config, running: false, removed: false }
      containers.push(c)
      return answer(res, 201, { Id: c.id, Warnings: [] })
    }
    if ((m = path.match(/^\/containers\/([^/]+)(\/[a-z]+)?$/))) {
      const c = liveContainer(m[1]!)
      if (!c) return answer(res, 404, { message: `No such container: ${m[1]}` })
      const action = `${method} ${m[2] ?? ''}`
      if (action === 'POST /start') {
        c.running = true
        return answer(res, 204)
      }
      if (action === 'GET /json')
        return answer(res, 200, {
          Id: c.id,
          Config: c.config,
          HostConfig: c.config.HostConfig ?? {},
          State: { Status: c.running ? 'running' : 'exited', Running: c.running },
        })
      if (action === 'POST /kill') {
        if (!c.running) return answer(res, 409, { message: `Container ${c.id} is not running` })
        c.running = false
        stopExecs(c)
        return answer(res, 204)
      }
      if (action === 'DELETE ') {
        if (c.running && query.get('force') !== 'true')
          return answer(res, 409, { message: `cannot remove container ${c.id}: container is running` })
        c.running = false
        c.removed = true
        stopExecs(c)
        return answer(res, 204)
      }
      if (action === 'POST /exec') {
        if (!c.running) return answer(res, 409, { message: `Container ${c.id} is not running` })
        const exec: FakeExec = { id: newId(), container: c, config: body(), running: false, exitCode: null }
        execs.push(exec)
        return answer(res, 201, { Id: exec.id })
      }
    }
    if ((m = path.match(/^\/exec\/([^/]+)\/(start|json)$/))) {
      const exec = execs.find((e) => e.id === m![1])
      if (!exec) return answer(res, 404, { message: `No such exec instance: ${m[1]}` })
      if (method === 'GET' && m[2] === 'json')
        return answer(res, 200, {
          ID: exec.id,
          ContainerID: exec.container.id,
          Running: exec.running,
          ExitCode: exec.exitCode,
          ProcessConfig: { entrypoint: exec.config.Cmd?.[0], arguments: exec.config.Cmd?.slice(1) },
        })
      if (method === 'POST' && m[2] === 'start') {
        if (!exec.container.running) return answer(res, 409, { message: 'container is not running' })
        exec.running = true
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' })
        res.flushHeaders()
        let open = true
        const end = () => {
          open = false
          streams.delete(exec)
          res.end()
        }
        const io: ExecIO = {
          exec,
          stdout: (d) => void (open && res.write(frame('stdout', d))),
          stderr: (d) => void (open && res.write(frame('stderr', d))),
          exit: (code) => {
            if (!open) return
            exec.running = false
            exec.exitCode = code
            end()
          },
          drop: () => open && end(),
        }
        streams.set(exec, io)
        return (opts.onExec ?? ((x: ExecIO) => x.exit(0)))(io)
      }
    }
    answer(res, 404, { message: `page not found: ${method} ${path}` })
  }

  const routes = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://engine')
    const path = url.pathname.replace(/^\/v1\.\d+(?=\/)/, '')
    if (!/^\/(images|containers|exec)\//.test(path)) return false
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const call: EngineCall = {
        method: req.method ?? 'GET',
        path,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      }
      calls.push(call)
      opts.onCall?.(call)
      const failure = opts.fail?.(call)
      if (failure) return answer(res, failure.status, { message: failure.message })
      handle(call, res)
    })
    return true
  }

  const engine = await startEngine(undefined, routes)
  return {
    docker: new Docker({ host: '127.0.0.1', port: engine.port, protocol: 'http' }),
    engine,
    calls,
    images,
    containers,
    execs,
    log: () => calls.map((c) => `${c.method} ${c.path}`),
    close: () => {
      for (const io of streams.values()) io.drop()
      return engine.close()
    },
  }
}
