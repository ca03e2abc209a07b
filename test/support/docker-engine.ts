/**
 * A stand-in for dockerd's HTTP API, for unit tests that reach an engine over SSH (the in-process
 * SSH server of ssh-server.ts, whose `docker system dial-stdio` is `dialStdio(engine)`) or on a
 * unix socket: /version, /_ping, and /slow, which answers when released; `routes` answers more
 * (docker-containers.ts: images, containers and execs).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect as tcpConnect } from 'node:net'
import type { ExecRequest } from './ssh-server'

export const ENGINE_VERSION = { Version: '27.5.1', ApiVersion: '1.47', Os: 'linux', Arch: 'amd64' }

export interface FakeEngine {
  server: Server
  port: number
  /** Requests seen, as `METHOD path`. */
  requests: string[]
  /** Requests to /slow waiting for release(). */
  held: ServerResponse[]
  release(): void
  close(): Promise<void>
}

const onLoopback = (s: Server) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))

/** Answers a request the engine does not know (true), or leaves it to the 404 (false). */
export type EngineRoutes = (req: IncomingMessage, res: ServerResponse) => boolean

export async function startEngine(
  listen: (s: Server) => Promise<void> = onLoopback,
  routes?: EngineRoutes,
): Promise<FakeEngine> {
  const requests: string[] = []
  const held: ServerResponse[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`)
    const json = (body: unknown) => {
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify(body))
    }
    if (req.url?.endsWith('/version')) return json(ENGINE_VERSION)
    if (req.url?.endsWith('/_ping')) return res.end('OK')
    if (req.url?.includes('/slow')) return void held.push(res)
    if (routes?.(req, res)) return
    res.statusCode = 404
    json({ message: `page not found: ${req.url}` })
  })
  await listen(server)
  const address = server.address()
  return {
    server,
    port: typeof address === 'object' && address ? address.port : 0,
    requests,
    held,
    release: () => {
      for (const res of held.splice(0)) res.end(JSON.stringify([]))
    },
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** `docker system dial-stdio` as the CLI does it: the channel's bytes to and from the engine. */
export function dialStdio(engine: FakeEngine): (req: ExecRequest) => void {
  return ({ command, channel }) => {
    if (command !== 'docker system dial-stdio') {
      channel.stderr.write(`unexpected command: ${command}\n`)
      channel.exit(127)
      return channel.end()
    }
    const sock = tcpConnect(engine.port, '127.0.0.1')
    channel.pipe(sock).pipe(channel)
    sock.on('error', () => channel.close())
    channel.on('close', () => sock.destroy())
  }
}
