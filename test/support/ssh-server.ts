/**
 * A real SSH server in the test process (ssh2's Server on 127.0.0.1, an ephemeral port, generated
 * keys), so unit tests exercise the real client paths: key exchange, host key verification,
 * public key authentication, exec channels with exit codes and stderr, direct-tcpip channels
 * (jump hosts), and connections that drop or freeze. Commands are not run: each test says what an
 * exec does (`onExec`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Server,
  utils,
  type AcceptConnection,
  type ClientInfo,
  type Connection,
  type RejectConnection,
  type ServerChannel,
  type TcpipRequestInfo,
} from 'ssh2'
import type { FarmNode } from '../../src/main/core/farm/farm-model'
import { farmNode } from './farm-node'

export interface TestKey {
  /** OpenSSH private key text. */
  private: string
  /** `type base64`, as in authorized_keys and known_hosts. */
  public: string
  /** The public key blob, as a client's hostVerifier receives it. */
  blob: Buffer
  type: string
}

export function makeKey(
  type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519',
  opts: { passphrase?: string } = {},
): TestKey {
  // A passphrase-protected key with few KDF rounds: as locked, quicker to make.
  const locked = opts.passphrase ? { passphrase: opts.passphrase, cipher: 'aes256-cbc', rounds: 1 } : {}
  for (;;) {
    const pair =
      type === 'rsa'
        ? utils.generateKeyPairSync('rsa', { bits: 2048, ...locked } as never)
        : type === 'ecdsa'
          ? utils.generateKeyPairSync('ecdsa', { bits: 256, ...locked } as never)
          : utils.generateKeyPairSync('ed25519', locked as never)
    // ssh2 writes an ed25519 key whose public half starts with a zero byte one byte short (a few
    // keys in a thousand), and then cannot read it back: make another.
    if (utils.parseKey(pair.private, opts.passphrase) instanceof Error) continue
    const [t, b64] = pair.public.trim().split(/\s+/)
    return { private: pair.private, public: `${t} ${b64}`, blob: Buffer.from(b64!, 'base64'), type: t! }
  }
}

export interface ExecRequest {
  command: string
  channel: ServerChannel
  /** The server side of the connection the exec came on. */
  conn: Connection
}

export interface SshServerOptions {
  /** The keys the server offers. @default one ed25519 key */
  hostKeys?: TestKey[]
  /** Public keys accepted for any user. @default the generated client key */
  authorized?: TestKey[]
  /** What an exec does; the channel is already accepted. @default exits 0 at once */
  onExec?: (req: ExecRequest) => void
  /** Refuse exec requests (as a server that allows no sessions). */
  refuseExec?: boolean
  /** Jump host behaviour: direct-tcpip channels. Without it the server refuses them. */
  onTcpip?: (
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    info: TcpipRequestInfo,
  ) => void
}

export interface TestSshServer {
  readonly host: '127.0.0.1'
  readonly port: number
  readonly hostKeys: TestKey[]
  /** A key the server accepts, written to `clientKeyFile` (mode 0600). */
  readonly clientKey: TestKey
  readonly clientKeyFile: string
  /** A directory removed by close(), for the test's own files. */
  readonly dir: string
  /** known_hosts text trusting this server's first host key (or `key`) for 127.0.0.1:port. */
  knownHosts(key?: TestKey): string
  /** A farm node for this server, with the client key as identityFile. */
  node(name: string, over?: Partial<FarmNode>): FarmNode
  /** Raw TCP sockets of every connection accepted, server side: destroy to drop, pause to freeze. */
  readonly sockets: Socket[]
  /** Authentication attempts seen, in order (method and user). */
  readonly auth: Array<{ method: string; username: string }>
  /** Clients that completed authentication. */
  readonly clients: ClientInfo[]
  /** Exec channels: open now, the most open at once, and every command in order. */
  /** Sessions open now and at most, across connections; `peakPerClient`: each connection's most, in order of connection. */
  readonly sessions: { open: number; peak: number; commands: string[]; peakPerClient: number[] }
  close(): Promise<void>
}

export async function startSshServer(opts: SshServerOptions = {}): Promise<TestSshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ym-sshd-'))
  const hostKeys = opts.hostKeys ?? [makeKey('ed25519')]
  const clientKey = makeKey('ed25519')
  const clientKeyFile = join(dir, 'id_ed25519')
  writeFileSync(clientKeyFile, clientKey.private, { mode: 0o600 })
  const authorized = (opts.authorized ?? [clientKey]).map((k) => {
    const parsed = utils.parseKey(k.public)
    if (parsed instanceof Error) throw parsed
    return parsed
  })

  const sockets: Socket[] = []
  const auth: TestSshServer['auth'] = []
  const clients: ClientInfo[] = []
  const sessions = { open: 0, peak: 0, commands: [] as string[], peakPerClient: [] as number[] }
  const conns = new Set<Connection>()

  const ssh = new Server({ hostKeys: hostKeys.map((k) => k.private) }, (conn, info) => {
    conns.add(conn)
    conn.on('close', () => conns.delete(conn))
    // A client that goes away mid-test is not the server's failure.
    conn.on('error', () => {})
    conn.on('authentication', (ctx) => {
      auth.push({ method: ctx.method, username: ctx.username })
      if (ctx.method !== 'publickey') return ctx.reject(['publickey'])
      const key = authorized.find((k) => k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data))
      if (!key) return ctx.reject(['publickey'])
      // Without a signature this is the client asking whether the key would do.
      if (ctx.signature && !key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return ctx.reject()
      ctx.accept()
    })
    conn.on('ready', () => {
      clients.push(info)
      const index = sessions.peakPerClient.push(0) - 1
      let mine = 0
      conn.on('session', (acceptSession) => {
        const session = acceptSession()
        session.on('exec', (accept, reject, req) => {
          if (opts.refuseExec) return reject()
          const channel = accept()
          sessions.open++
          sessions.peak = Math.max(sessions.peak, sessions.open)
          sessions.peakPerClient[index] = Math.max(sessions.peakPerClient[index]!, ++mine)
          sessions.commands.push(req.command)
          channel.once('close', () => {
            sessions.open--
            mine--
          })
          if (opts.onExec) opts.onExec({ command: req.command, channel, conn })
          else {
            channel.exit(0)
            channel.end()
          }
          // A command that does not read its stdin still sees it end: ssh2 says 'close' only then.
          if (channel.readableFlowing === null) channel.resume()
        })
      })
      if (opts.onTcpip) conn.on('tcpip', opts.onTcpip)
    })
  })

  const tcp = createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    ssh.injectSocket(socket)
  })
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  const port = (tcp.address() as { port: number }).port

  return {
    host: '127.0.0.1',
    port,
    hostKeys,
    clientKey,
    clientKeyFile,
    dir,
    knownHosts: (key = hostKeys[0]!) => `[127.0.0.1]:${port} ${key.public}\n`,
    node: (name, over = {}) =>
      farmNode(name, { host: '127.0.0.1', port, user: 'ci', identityFile: clientKeyFile, ...over }),
    sockets,
    auth,
    clients,
    sessions,
    close: async () => {
      for (const c of conns) c.end()
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}
