/**
 * Serves the renderer and the API to a browser on 127.0.0.1 only: static files over HTTP, the
 * API over one WebSocket. Everything needs the random token printed in the URL (kept after the
 * first visit as an HttpOnly, SameSite=Strict cookie); a foreign Origin or Host is refused, so
 * other web pages and DNS rebinding cannot reach it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Backend } from '../api/backend'

export interface LoopbackServerOptions {
  backend: Backend
  /** Folder with the built renderer (index.html and assets). */
  rendererDir: string
  /** @default 7420; 0 picks a free port */
  port?: number
  /** Fixed token (tests); random otherwise. */
  token?: string
}

export interface LoopbackServer {
  url: string
  origin: string
  token: string
  port: number
  close(): Promise<void>
}

const HOST = '127.0.0.1'
const COOKIE = 'yardmaster_token'
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export async function startLoopbackServer(opts: LoopbackServerOptions): Promise<LoopbackServer> {
  const token = opts.token ?? randomBytes(24).toString('base64url')
  let origin = ''
  let allowedHosts: string[] = []

  const tokenOk = (req: IncomingMessage, url: URL): boolean => {
    const given = url.searchParams.get('token') ?? cookie(req, COOKIE)
    if (!given) return false
    const a = Buffer.from(given)
    const b = Buffer.from(token)
    return a.length === b.length && timingSafeEqual(a, b)
  }
  const sameSite = (req: IncomingMessage): boolean => {
    if (!allowedHosts.includes(req.headers.host ?? '')) return false
    const o = req.headers.origin
    return o === undefined || o === origin || o === origin.replace(HOST, 'localhost')
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error')
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin)
    if (!sameSite(req))
      return send(
        res,
        403,
        'text/plain; charset=utf-8',
        "Forbidden: requests must come from this server's own page.",
      )
    if (!tokenOk(req, url)) {
      return send(
        res,
        401,
        'text/plain; charset=utf-8',
        'Unauthorized: open the URL printed by `yardmaster serve`; it ends with ?token=...\n',
      )
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed')
    if (url.searchParams.has('token')) {
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`)
    }
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1))
    const file = normalize(join(opts.rendererDir, rel))
    if (!file.startsWith(normalize(opts.rendererDir) + sep))
      return send(res, 404, 'text/plain; charset=utf-8', 'not found')
    let body: Buffer
    try {
      body = await readFile(file)
    } catch {
      return send(res, 404, 'text/plain; charset=utf-8', 'not found')
    }
    send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', body)
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', origin)
    // Browsers always send Origin on WebSocket upgrades; a missing or foreign one is refused.
    const ok =
      url.pathname === '/api' && req.headers.origin !== undefined && sameSite(req) && tokenOk(req, url)
    if (!ok) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveApi(ws, opts.backend))
  })

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(
              `port ${opts.port ?? 7420} on ${HOST} is busy (another yardmaster serve?); pass --port 0 for any free port`,
            )
          : e,
      ),
    )
    server.listen(opts.port ?? 7420, HOST, () => {
      const addr = server.address()
      resolve(typeof addr === 'object' && addr ? addr.port : 0)
    })
  })
  origin = `http://${HOST}:${port}`
  allowedHosts = [`${HOST}:${port}`, `localhost:${port}`]

  return {
    url: `${origin}/?token=${token}`,
    origin,
    token,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function serveApi(ws: WebSocket, backend: Backend): void {
  const unsubscribe = backend.subscribe((event, payload) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload }))
  })
  ws.on('message', (data) => {
    let msg: { id?: unknown; method?: unknown; args?: unknown }
    try {
      msg = JSON.parse(String(data)) as typeof msg
    } catch {
      return ws.send(
        JSON.stringify({ id: null, ok: false, error: { name: 'BadRequest', message: 'not JSON' } }),
      )
    }
    void backend.invoke(String(msg.method), msg.args).then((envelope) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: msg.id, ...envelope }))
    })
  })
  ws.on('close', unsubscribe)
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Cross-Origin-Resource-Policy': 'same-origin',
  })
  res.end(body)
}

function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return null
}
