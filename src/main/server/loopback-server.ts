/**
 * Serves the renderer and the API to a browser on 127.0.0.1 only: static files over HTTP, the
 * API over one WebSocket. Everything needs the random token printed in the URL; the first visit
 * trades it for an HttpOnly, SameSite=Strict cookie and a redirect to the same URL without it. A
 * foreign Origin or Host is refused, so other web pages and DNS rebinding cannot reach it. A bad
 * request or frame costs only its own connection, never the server.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { Envelope } from '../../shared/api'
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
/** The largest API message taken; a bigger one closes its socket with 1009. */
const MAX_MESSAGE = 1 << 20
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
/** readFile's ways of saying "no such file here"; any other failure is ours (500). */
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG'])
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The token cookie's name. Browsers keep cookies per host, not per port, so two servers on
 * 127.0.0.1 sharing one name would overwrite each other's.
 */
export const cookieName = (port: number): string => `yardmaster_token_${port}`

export async function startLoopbackServer(opts: LoopbackServerOptions): Promise<LoopbackServer> {
  const token = opts.token ?? randomBytes(24).toString('base64url')
  let origin = ''
  let allowedHosts: string[] = []
  let cookie = ''

  /** Where the request carries the right token: its URL, its cookie, or nowhere. A token in the URL wins. */
  const authOf = (req: IncomingMessage, url: URL): 'url' | 'cookie' | null => {
    const inUrl = url.searchParams.get('token')
    if (inUrl !== null) return sameToken(inUrl, token) ? 'url' : null
    return sameToken(readCookie(req, cookie), token) ? 'cookie' : null
  }
  const sameSite = (req: IncomingMessage): boolean => {
    if (!allowedHosts.includes(req.headers.host ?? '')) return false
    const o = req.headers.origin
    return o === undefined || o === origin || o === origin.replace(HOST, 'localhost')
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (res.headersSent) res.destroy()
      else sendText(res, 500, 'internal error')
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req, origin)
    if (!url) return sendText(res, 400, 'bad request: the request target must be a path')
    if (!sameSite(req))
      return sendText(res, 403, "Forbidden: requests must come from this server's own page.")
    const auth = authOf(req, url)
    if (!auth) {
      return sendText(
        res,
        401,
        'Unauthorized: open the URL printed by `yardmaster serve`; it ends with ?token=...\n',
      )
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed')
    const segments = decodePath(url.pathname)
    if (!segments) return sendText(res, 400, 'bad request: malformed % escape in the path')
    if (auth === 'url') {
      // The cookie carries the token from now on; the redirect takes it out of the address bar and history.
      return sendText(res, 303, 'see other', {
        Location: withoutToken(url),
        'Set-Cookie': `${cookie}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      })
    }
    const file = fileIn(opts.rendererDir, segments)
    if (!file) return sendText(res, 404, 'not found')
    let body: Buffer
    try {
      body = await readFile(file)
    } catch (e) {
      if (NOT_THERE.has((e as NodeJS.ErrnoException).code ?? '')) return sendText(res, 404, 'not found')
      throw e
    }
    send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', body)
  }

  const upgradeAllowed = (req: IncomingMessage): boolean => {
    const url = requestUrl(req, origin)
    // Browsers always send Origin on WebSocket upgrades; a missing or foreign one is refused.
    return (
      url?.pathname === '/api' &&
      req.headers.origin !== undefined &&
      sameSite(req) &&
      authOf(req, url) !== null
    )
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE })
  // With noServer, ws has no server of its own to fail; handled anyway, as an unhandled 'error' ends the process.
  wss.on('error', () => {})
  server.on('upgrade', (req, socket, head) => {
    // Node hands the socket over without an 'error' listener; until ws adds its own, one is needed
    // here (a client resetting while refused) or the error would end the process.
    socket.on('error', () => socket.destroy())
    if (!upgradeAllowed(req)) {
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
  // Once listening, an error (a failed accept under EMFILE) concerns one connection; keep serving.
  server.on('error', () => {})
  origin = `http://${HOST}:${port}`
  allowedHosts = [`${HOST}:${port}`, `localhost:${port}`]
  cookie = cookieName(port)

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

/** Bytes of events a page may leave unread before it is disconnected (serveApi). */
export const SLOW_VIEWER_BYTES = 8 * 1024 * 1024

function serveApi(ws: WebSocket, backend: Backend): void {
  // A bad frame makes ws close this socket (1009 too big, 1002 not WebSocket, 1007 not UTF-8),
  // then emit 'error'; unheard, that error would end the process and every other client with it.
  ws.on('error', () => {})
  const unsubscribe = backend.subscribe((event, payload) => {
    // A page that stops reading (a frozen tab, a stalled link) would make every event wait here,
    // in memory, for as long as it lives. Past a limit it is let go instead: the page reconnects
    // and starts again from a fresh snapshot, and no job ever waits on a viewer.
    if (ws.bufferedAmount > SLOW_VIEWER_BYTES) {
      unsubscribe()
      return ws.close(1013, 'too far behind: reconnect for a snapshot')
    }
    sendJson(ws, { event, payload })
  })
  ws.on('close', unsubscribe)
  ws.on('message', (data) => void answer(ws, backend, data))
}

/** Answers one message; never throws, never rejects. */
async function answer(ws: WebSocket, backend: Backend, data: RawData): Promise<void> {
  const call = parseCall(data)
  if (!call) {
    const error = { name: 'BadRequest', message: 'not a call: expected JSON {"id", "method", "args"}' }
    return sendJson(ws, { id: null, ok: false, error })
  }
  let envelope: Envelope<unknown>
  try {
    envelope = await backend.invoke(call.method, call.args)
  } catch (e) {
    // invoke promises to answer in an envelope; should it reject, the caller still gets one.
    envelope = { ok: false, error: { name: 'InternalError', message: (e as Error).message } }
  }
  sendJson(ws, { id: call.id, ...envelope })
}

function parseCall(data: RawData): { id: unknown; method: string; args: unknown } | null {
  let msg: unknown
  try {
    msg = JSON.parse(String(data))
  } catch {
    return null
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return null
  const { id, method, args } = msg as Record<string, unknown>
  return { id, method: String(method), args }
}

/** Sends if the socket is open. A message that cannot be serialized closes the socket (1011) instead of throwing. */
function sendJson(ws: WebSocket, message: object): void {
  if (ws.readyState !== ws.OPEN) return
  let text: string
  try {
    text = JSON.stringify(message)
  } catch {
    return ws.close(1011, 'unserializable message')
  }
  ws.send(text)
}

/** The request's path and query as a URL of this origin; null unless the request target is a path. */
function requestUrl(req: IncomingMessage, origin: string): URL | null {
  const target = req.url ?? ''
  if (!target.startsWith('/')) return null
  try {
    // Appended, not resolved against the origin: `//evil.example/x` stays a path on this host.
    return new URL(origin + target)
  } catch {
    return null
  }
}

/** The path's segments, decoded; null if a % escape is malformed. */
function decodePath(pathname: string): string[] | null {
  try {
    return pathname.split('/').slice(1).map(decodeURIComponent)
  } catch {
    return null
  }
}

/**
 * The file that decoded path segments name inside `dir`, or null if they name none there. URL
 * parsing has already removed `.` and `..` segments (even as `%2e`, and `\` counts as `/`); what
 * is left to refuse are escapes that decode to separators or NULs (`..%2f`, `%5c`, `%00`) and
 * empty segments.
 */
function fileIn(dir: string, segments: string[]): string | null {
  const names = segments.length === 1 && segments[0] === '' ? ['index.html'] : segments
  if (names.some((s) => s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s))) return null
  const root = resolve(dir)
  const file = resolve(root, ...names)
  // Whatever the checks above might miss, nothing outside the folder is served.
  return file.startsWith(root + sep) ? file : null
}

/** Where to send the browser once the cookie holds the token: the same path and query, without it. */
function withoutToken(url: URL): string {
  const query = new URLSearchParams(url.searchParams)
  query.delete('token')
  const search = query.toString()
  // One leading slash: a Location of `//evil.example/` would send the browser to another site.
  return '/' + url.pathname.replace(/^\/+/, '') + (search ? `?${search}` : '')
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, 'text/plain; charset=utf-8', text, headers)
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Cross-Origin-Resource-Policy': 'same-origin',
    ...headers,
  })
  res.end(body)
}

/** Compares in constant time, so the answer's timing does not tell how much of a guess was right. */
function sameToken(given: string | null, token: string): boolean {
  if (!given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

function readCookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return null
}
