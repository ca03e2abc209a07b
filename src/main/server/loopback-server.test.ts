import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { request, type IncomingHttpHeaders } from 'node:http'
import { connect as tcpConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { Envelope } from '../../shared/api'
import type { Backend } from '../api/backend'
import { SLOW_VIEWER_BYTES, startLoopbackServer, type LoopbackServer } from './loopback-server'

// The real readFile, which one test makes fail as a broken disk would.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>()
  return { ...actual, readFile: vi.fn(actual.readFile) }
})

const INDEX = '<!doctype html><title>Yardmaster</title>'
const ASSET = 'console.log("app")'
const SECRET = 'the file outside the renderer folder'

type Listener = (event: string, payload: unknown) => void

/** What the server uses of a Backend: invoke by name, and events. */
function fakeBackend() {
  const listeners = new Set<Listener>()
  return {
    listeners,
    invoke(method: string, args: unknown): Promise<Envelope<unknown>> {
      if (method === 'echo') return Promise.resolve({ ok: true, result: args })
      if (method === 'explode') return Promise.reject(new Error('the backend broke its promise'))
      return Promise.resolve({
        ok: false,
        error: { name: 'UnknownMethod', message: `no such method: ${method}` },
      })
    },
    subscribe(l: Listener): () => void {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    emit(event: string, payload: unknown): void {
      for (const l of listeners) l(event, payload)
    },
  }
}

// In `serve`, an uncaught error or rejection ends the process; vitest would only report it after
// the run, so each test checks that it caused none.
const uncaught: unknown[] = []
const onUncaught = (e: unknown) => uncaught.push(e)
beforeAll(() => {
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
})
afterAll(() => {
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
})

let root: string
let backend: ReturnType<typeof fakeBackend>
let server: LoopbackServer
const opened: Array<WebSocket | Socket> = []

beforeEach(async () => {
  // root/renderer is served; root/secret.txt and root/renderer-private/ sit beside it, to be reached by no path.
  root = mkdtempSync(join(tmpdir(), 'yardmaster-loopback-'))
  const rendererDir = join(root, 'renderer')
  mkdirSync(join(rendererDir, 'assets'), { recursive: true })
  writeFileSync(join(rendererDir, 'index.html'), INDEX)
  writeFileSync(join(rendererDir, 'assets', 'app.js'), ASSET)
  writeFileSync(join(root, 'secret.txt'), SECRET)
  mkdirSync(join(root, 'renderer-private'))
  writeFileSync(join(root, 'renderer-private', 'secret.txt'), SECRET)
  backend = fakeBackend()
  server = await startLoopbackServer({
    port: 0,
    token: 'fixed',
    rendererDir,
    backend: backend as unknown as Backend,
  })
})

afterEach(async () => {
  for (const c of opened.splice(0)) {
    if (c instanceof WebSocket) c.terminate()
    else c.destroy()
  }
  await server.close()
  rmSync(root, { recursive: true, force: true })
  expect(uncaught.splice(0).map(String), 'errors that would have ended the process').toEqual([])
})

const host = () => `127.0.0.1:${server.port}`
const cookie = (port = server.port, value = 'fixed') => `yardmaster_token_${port}=${value}`

// ---------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request on its own connection; Host is this server's unless given. */
function http(
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: opts.method ?? 'GET',
        headers: { Host: host(), ...opts.headers },
        agent: false,
      },
      (res) => {
        let body = ''
        res.setEncoding('latin1')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Bytes written on a raw connection, and everything the server sends back until it closes. */
function rawExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(server.port, '127.0.0.1', () => socket.write(bytes))
    opened.push(socket)
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => (got += d))
    socket.on('error', reject)
    socket.on('close', () => resolve(got))
  })
}

const withCookie = (extra: Record<string, string> = {}) => ({ headers: { Cookie: cookie(), ...extra } })

describe('the token and its cookie', () => {
  it('refuses a request without the token, or with a wrong one', async () => {
    for (const path of [
      '/',
      '/index.html',
      '/assets/app.js',
      '/?token=wrong',
      '/?token=',
      '/?token=fixedfixed',
    ]) {
      const res = await http(path)
      expect(res.status, path).toBe(401)
      expect(res.body).toContain('open the URL printed by `yardmaster serve`')
      expect(res.headers['set-cookie'], path).toBeUndefined()
    }
  })

  it('refuses a wrong cookie, the shared old name, and the cookie of a server on another port', async () => {
    for (const c of [cookie(server.port, 'wrong'), 'yardmaster_token=fixed', cookie(server.port + 1)]) {
      expect((await http('/', { headers: { Cookie: c } })).status, c).toBe(401)
    }
  })

  it('trades the token in the URL for a per-port cookie, redirecting to the same URL without it', async () => {
    const res = await http('/?token=fixed')
    expect(res.status).toBe(303)
    expect(res.headers.location).toBe('/')
    expect(res.headers['set-cookie']).toEqual([
      `yardmaster_token_${server.port}=fixed; HttpOnly; SameSite=Strict; Path=/`,
    ])
    expect(res.body).not.toContain(INDEX)
  })

  it('keeps the path and the other query parameters in the redirect', async () => {
    const res = await http('/assets/app.js?v=2&token=fixed&x=a%20b')
    expect(res.status).toBe(303)
    expect(res.headers.location).toBe('/assets/app.js?v=2&x=a+b')
  })

  it('redirects a HEAD with the token too', async () => {
    const res = await http('/?token=fixed', { method: 'HEAD' })
    expect(res.status).toBe(303)
    expect(res.headers.location).toBe('/')
  })

  it('never redirects to another site, whatever the path looks like', async () => {
    const res = await http('//evil.example/?token=fixed')
    expect(res.status).toBe(303)
    expect(res.headers.location).toMatch(/^\/(?!\/)/)
  })

  it('serves the page and its assets to the cookie, with the security headers', async () => {
    const page = await http('/', withCookie())
    expect(page.status).toBe(200)
    expect(page.body).toBe(INDEX)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toContain("default-src 'self'")
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    const asset = await http('/assets/app.js?v=2', withCookie())
    expect(asset.status).toBe(200)
    expect(asset.body).toBe(ASSET)
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8')
  })

  it('names its cookie per port, so two servers on 127.0.0.1 keep theirs apart', async () => {
    const other = await startLoopbackServer({
      port: 0,
      token: 'other',
      rendererDir: join(root, 'renderer'),
      backend: backend as unknown as Backend,
    })
    try {
      const ours = (await http('/?token=fixed')).headers['set-cookie']![0]!
      const theirs = await new Promise<string>((resolve, reject) =>
        request({ host: '127.0.0.1', port: other.port, path: '/?token=other', agent: false }, (res) => {
          res.resume()
          resolve(res.headers['set-cookie']![0]!)
        })
          .on('error', reject)
          .end(),
      )
      expect(ours.split('=')[0]).not.toBe(theirs.split('=')[0])
    } finally {
      await other.close()
    }
  })

  it('still prints the URL with the token for `serve` to show', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=fixed`)
    expect(server.origin).toBe(`http://127.0.0.1:${server.port}`)
  })
})

describe('Host and Origin', () => {
  it('refuses a foreign Host even with the right token (DNS rebinding)', async () => {
    for (const Host of [`evil.example:${server.port}`, 'evil.example', `127.0.0.1:${server.port + 1}`]) {
      const res = await http('/?token=fixed', { headers: { Host } })
      expect(res.status, Host).toBe(403)
      expect(res.headers['set-cookie']).toBeUndefined()
      expect((await http('/', withCookie({ Host }))).status, Host).toBe(403)
    }
  })

  it('refuses a foreign Origin', async () => {
    for (const Origin of ['http://evil.example', `http://evil.example:${server.port}`, 'null']) {
      expect((await http('/', withCookie({ Origin }))).status, Origin).toBe(403)
    }
  })

  it('accepts its own origin under both names', async () => {
    expect((await http('/', withCookie({ Origin: server.origin }))).status).toBe(200)
    const local = `localhost:${server.port}`
    expect((await http('/', withCookie({ Host: local, Origin: `http://${local}` }))).status).toBe(200)
  })
})

describe('paths', () => {
  it('answers 400 to a malformed % escape', async () => {
    for (const path of ['/%E0%A4%A', '/%', '/assets/%zz.js', '/%?token=fixed']) {
      const res = await http(path, withCookie())
      expect(res.status, path).toBe(400)
    }
  })

  const attempts = [
    '/../secret.txt',
    '/../../../../etc/passwd',
    '/%2e%2e/secret.txt',
    '/%2E%2E/%2E%2E/etc/passwd',
    '/..%2fsecret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/assets\\..\\..\\secret.txt',
    '/../renderer-private/secret.txt',
    '/..%2frenderer-private%2fsecret.txt',
    '/%2fetc%2fpasswd',
    '/index.html%00',
    '/secret.txt%00.html',
    '/%00../secret.txt',
    '//etc/passwd',
  ]
  it.each(attempts)('does not serve %s', async (path) => {
    const res = await http(path, withCookie())
    expect([400, 404]).toContain(res.status)
    expect(res.body).not.toContain(SECRET)
    expect(res.body).not.toContain('root:')
  })

  it('does not serve traversal in a raw request line either', async () => {
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/..%2f..%2fsecret.txt']) {
      const got = await rawExchange(
        `GET ${path} HTTP/1.1\r\nHost: ${host()}\r\nCookie: ${cookie()}\r\nConnection: close\r\n\r\n`,
      )
      expect(got, path).toMatch(/^HTTP\/1\.1 40[04] /)
      expect(got).not.toContain(SECRET)
    }
  })

  it('answers 404 to a file that is not there, and to a folder', async () => {
    expect((await http('/nothing.js', withCookie())).status).toBe(404)
    expect((await http('/assets', withCookie())).status).toBe(404)
    expect((await http('/assets/', withCookie())).status).toBe(404)
  })

  it('answers 500 when a file cannot be read for a reason of its own, and keeps serving', async () => {
    const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })
    vi.mocked(readFile).mockRejectedValueOnce(eio)
    const res = await http('/', withCookie())
    expect(res.status).toBe(500)
    expect(res.body).not.toContain('EIO')
    expect((await http('/', withCookie())).status).toBe(200)
  })

  it('answers 400 to a request target that is not a path', async () => {
    const got = await rawExchange(`GET http://[ HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`)
    expect(got).toMatch(/^HTTP\/1\.1 400 /)
    expect((await http('/', withCookie())).status).toBe(200)
  })

  it('answers 405 to other methods', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      expect((await http('/', { method, ...withCookie() })).status, method).toBe(405)
    }
    expect((await http('/?token=fixed', { method: 'POST' })).status).toBe(405)
  })

  it('survives malformed HTTP and keeps serving', async () => {
    const got = await rawExchange('NOT HTTP AT ALL\r\n\r\n')
    expect(got).toMatch(/^HTTP\/1\.1 400 /)
    expect((await http('/', withCookie())).status).toBe(200)
  })
})

// ---------------------------------------------------------------------------------------------
// WebSocket

const wsUrl = (query = '') => `ws://${host()}/api${query}`
const pageHeaders = () => ({ Origin: server.origin, Cookie: cookie() })

/** Opens a client as the page does (its Origin and cookie) unless told otherwise. */
function client(url = wsUrl(), headers: Record<string, string> = pageHeaders()): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    opened.push(ws)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
  })
}

/** The HTTP status an upgrade is refused with (101 if it is not). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers })
    opened.push(ws)
    ws.once('open', () => resolve(101))
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.once('error', () => resolve(-1))
  })
}

function nextMessage(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) =>
    ws.once('message', (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>)),
  )
}

function ask(ws: WebSocket, text: string): Promise<Record<string, unknown>> {
  const answer = nextMessage(ws)
  ws.send(text)
  return answer
}

const call = (ws: WebSocket, id: number, method: string, args: unknown = {}) =>
  ask(ws, JSON.stringify({ id, method, args }))

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)))
}

/** Upgrades a raw socket properly, as the page would; resolves once the server has switched. */
function rawUpgrade(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(server.port, '127.0.0.1', () =>
      socket.write(
        [
          'GET /api HTTP/1.1',
          `Host: ${host()}`,
          `Origin: ${server.origin}`,
          `Cookie: ${cookie()}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      ),
    )
    opened.push(socket)
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      if (head.startsWith('HTTP/1.1 101 ')) resolve(socket)
      else reject(new Error(head))
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

/** The status code of the close frame the server sends, once the connection has ended. */
function serverCloseCode(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let frames = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      frames = Buffer.concat([frames, d])
      // The server's close frame (opcode 8) tells the code; then we close our side, as a client does.
      if (frames.length >= 4 && frames[0] === 0x88) socket.end()
    })
    socket.on('close', () => {
      if (frames[0] !== 0x88) return reject(new Error(`no close frame: ${frames.toString('hex')}`))
      resolve(frames.readUInt16BE(2))
    })
  })
}

const MASK = [0x01, 0x02, 0x03, 0x04]
/** A masked client frame, as a browser sends: first byte (FIN, RSV, opcode), payload. */
function clientFrame(first: number, payload: Buffer): Buffer {
  const masked = Buffer.from(payload.map((b, i) => b ^ MASK[i % 4]!))
  return Buffer.concat([Buffer.from([first, 0x80 | payload.length, ...MASK]), masked])
}

describe('the API upgrade', () => {
  it('accepts the token in the URL, and the cookie', async () => {
    const byToken = await client(wsUrl('?token=fixed'), { Origin: server.origin })
    expect(await call(byToken, 1, 'echo', { a: 1 })).toEqual({ id: 1, ok: true, result: { a: 1 } })
    const byCookie = await client()
    expect(await call(byCookie, 2, 'echo', 'b')).toEqual({ id: 2, ok: true, result: 'b' })
  })

  it('refuses a wrong or missing token with 403', async () => {
    const o = { Origin: server.origin }
    expect(await upgradeStatus(wsUrl('?token=wrong'), o)).toBe(403)
    expect(await upgradeStatus(wsUrl(), o)).toBe(403)
    expect(await upgradeStatus(wsUrl(), { ...o, Cookie: cookie(server.port, 'wrong') })).toBe(403)
    expect(await upgradeStatus(wsUrl(), { ...o, Cookie: 'yardmaster_token=fixed' })).toBe(403)
    expect(await upgradeStatus(wsUrl(), { ...o, Cookie: cookie(server.port + 1) })).toBe(403)
  })

  it('refuses a foreign or missing Origin, and a foreign Host', async () => {
    const c = { Cookie: cookie() }
    expect(await upgradeStatus(wsUrl(), { ...c, Origin: 'http://evil.example' })).toBe(403)
    expect(await upgradeStatus(wsUrl('?token=fixed'), { Origin: 'http://evil.example' })).toBe(403)
    expect(await upgradeStatus(wsUrl(), c)).toBe(403)
    expect(await upgradeStatus(wsUrl(), { ...pageHeaders(), Host: `evil.example:${server.port}` })).toBe(403)
  })

  it('upgrades only /api', async () => {
    expect(await upgradeStatus(`ws://${host()}/`, pageHeaders())).toBe(403)
    expect(await upgradeStatus(`ws://${host()}/api/x`, pageHeaders())).toBe(403)
  })

  it('survives an upgrade whose request target is not a path', async () => {
    const got = await rawExchange(
      `GET http://[ HTTP/1.1\r\nHost: ${host()}\r\nOrigin: ${server.origin}\r\nCookie: ${cookie()}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    )
    expect(got).toMatch(/^HTTP\/1\.1 40[03] /)
    expect(await call(await client(), 1, 'echo', 1)).toMatchObject({ ok: true })
  })

  it('survives a client that resets its connection while being refused', async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const socket = tcpConnect(server.port, '127.0.0.1', () => {
          socket.write(
            `GET /api HTTP/1.1\r\nHost: ${host()}\r\nOrigin: http://evil.example\r\nUpgrade: websocket\r\n` +
              'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          )
          socket.resetAndDestroy()
        })
        socket.on('error', () => {})
        socket.on('close', () => resolve())
      })
    }
    expect(await call(await client(), 1, 'echo', 1)).toMatchObject({ ok: true })
  })
})

describe('API messages', () => {
  it('answers a call by id, and forwards events', async () => {
    const ws = await client()
    expect(await call(ws, 7, 'nope')).toEqual({
      id: 7,
      ok: false,
      error: { name: 'UnknownMethod', message: 'no such method: nope' },
    })
    const event = nextMessage(ws)
    backend.emit('run.changed', { runId: 3 })
    expect(await event).toEqual({ event: 'run.changed', payload: { runId: 3 } })
  })

  it('lets go of a page that stops reading events instead of keeping them in memory', async () => {
    const ws = await client()
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)))
    // The page stops reading: its socket is paused, so the server's sends pile up.
    const raw = (ws as unknown as { _socket: import('node:net').Socket })._socket
    raw.pause()
    const payload = { text: 'x'.repeat(64 * 1024) }
    // Enough to fill both kernels' socket buffers and then the limit, a few at a time.
    for (let i = 0; i < (4 * SLOW_VIEWER_BYTES) / (64 * 1024) && backend.listeners.size; i++) {
      backend.emit('log.appended', payload)
      await new Promise((r) => setImmediate(r))
    }
    expect(backend.listeners.size).toBe(0)
    raw.resume()
    expect(await closed).toBe(1013)
  })

  it('answers a message that is not JSON with an error envelope, and stays open', async () => {
    const ws = await client()
    expect(await ask(ws, 'not json {')).toEqual({
      id: null,
      ok: false,
      error: { name: 'BadRequest', message: expect.any(String) as string },
    })
    expect(await call(ws, 1, 'echo', 'still here')).toEqual({ id: 1, ok: true, result: 'still here' })
  })

  it.each(['null', '42', '"text"', '[1,2]', 'true'])(
    'answers JSON that is not a call (%s) with an error envelope, and stays open',
    async (text) => {
      const ws = await client()
      expect(await ask(ws, text)).toMatchObject({ id: null, ok: false, error: { name: 'BadRequest' } })
      expect(await call(ws, 1, 'echo', 'still here')).toEqual({ id: 1, ok: true, result: 'still here' })
    },
  )

  it('answers with an error envelope when the backend rejects, and keeps serving', async () => {
    const ws = await client()
    expect(await call(ws, 5, 'explode')).toMatchObject({ id: 5, ok: false, error: { name: 'InternalError' } })
    expect(await call(ws, 6, 'echo', 'after')).toEqual({ id: 6, ok: true, result: 'after' })
  })

  it('takes a message of exactly 1 MiB', async () => {
    const ws = await client()
    expect(await ask(ws, 'x'.repeat(1 << 20))).toMatchObject({ ok: false, error: { name: 'BadRequest' } })
  })
})

describe('bad frames close only their socket', () => {
  it('closes a client that sends more than 1 MiB with 1009; the others go on', async () => {
    const bystander = await client()
    const offender = await client()
    offender.on('error', () => {})
    const code = closeCode(offender)
    offender.send(Buffer.alloc((1 << 20) + 1, 0x20))
    expect(await code).toBe(1009)
    expect(await call(bystander, 1, 'echo', 'fine')).toEqual({ id: 1, ok: true, result: 'fine' })
    const newcomer = await client()
    expect(await call(newcomer, 2, 'echo', 'new')).toEqual({ id: 2, ok: true, result: 'new' })
    // The closed socket no longer listens to events.
    expect(backend.listeners.size).toBe(2)
  })

  const garbled: Array<[string, number, Buffer]> = [
    ['an unmasked frame', 1002, Buffer.from([0x81, 0x02, 0x68, 0x69])],
    ['a reserved opcode', 1002, clientFrame(0x83, Buffer.from('hi'))],
    ['RSV1 without an extension', 1002, clientFrame(0xc1, Buffer.from('hi'))],
    ['a fragmented control frame', 1002, clientFrame(0x09, Buffer.from('hi'))],
    ['a continuation with nothing to continue', 1002, clientFrame(0x80, Buffer.from('hi'))],
    ['text that is not UTF-8', 1007, clientFrame(0x81, Buffer.from([0xc3, 0x28]))],
    // A declared 64-bit length of 2 MiB: refused on the header, before any payload.
    ['a header declaring 2 MiB', 1009, Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, ...MASK])],
    ['a header declaring 2^63 bytes', 1009, Buffer.from([0x82, 0xff, 0x7f, 0xff, 0, 0, 0, 0, 0, 0, ...MASK])],
  ]
  it.each(garbled)(
    'closes a raw socket that sends %s with %d; the others go on',
    async (_what, expected, bytes) => {
      const bystander = await client()
      const socket = await rawUpgrade()
      const code = serverCloseCode(socket)
      socket.write(bytes)
      expect(await code).toBe(expected)
      expect(await call(bystander, 1, 'echo', 'fine')).toEqual({ id: 1, ok: true, result: 'fine' })
      expect(await call(await client(), 2, 'echo', 'new')).toMatchObject({ ok: true })
    },
  )
})

describe('close()', () => {
  it('resolves with clients connected, and closes them', async () => {
    const a = await client()
    const b = await client()
    const closedA = closeCode(a)
    const closedB = closeCode(b)
    await server.close()
    await Promise.all([closedA, closedB])
    expect(backend.listeners.size).toBe(0)
    await expect(http('/', withCookie())).rejects.toThrow()
  })
})
