/**
 * connectSsh and forwardTo against a real SSH server in this process (ssh2's Server on 127.0.0.1,
 * test/support/ssh-server.ts): host key checks before any credential, key files, the agent, the
 * errors a release engineer reads, keepalive, and jump host channels. The lab's sshd:
 * test/integration.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { connect as tcpConnect, createServer, type Server as NetServer, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Client } from 'ssh2'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  AuthenticationError,
  HostKeyMismatchError,
  NodeUnreachableError,
  UnknownHostKeyError,
} from '../farm/farm-errors'
import { fingerprint, KnownHosts } from './known-hosts'
import { connectSsh, describeNetworkError, forwardTo, LOST_AFTER_MS } from './ssh-connection'
import { closedPort, makeKey, startSshServer, type TestSshServer } from '../../../../test/support/ssh-server'

/** Runs a command on a connection: its output and exit code. */
function run(
  client: Client,
  command: string,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err)
      let stdout = ''
      let stderr = ''
      let code: number | null = null
      ch.on('data', (d: Buffer) => (stdout += d.toString()))
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      ch.on('exit', (c: number | null) => (code = c))
      ch.on('close', () => resolve({ stdout, stderr, code }))
    })
  })
}

const echoServer = () =>
  startSshServer({
    onExec: ({ command, channel }) => {
      channel.write(`ran: ${command}\n`)
      channel.stderr.write('a warning\n')
      channel.exit(3)
      channel.end()
    },
  })

const servers: TestSshServer[] = []
const clients: Client[] = []
async function server(make: () => Promise<TestSshServer> = echoServer): Promise<TestSshServer> {
  const s = await make()
  servers.push(s)
  return s
}
const kept = (c: Client) => (clients.push(c), c)

afterEach(async () => {
  vi.useRealTimers()
  vi.unstubAllEnvs()
  for (const c of clients.splice(0)) c.end()
  for (const s of servers.splice(0)) await s.close()
})

describe('connectSsh', () => {
  it('checks the host key, then logs in with the key file; commands run with their output and exit code', async () => {
    const s = await server()
    const client = kept(await connectSsh(s.node('n1'), KnownHosts.parse('kh', s.knownHosts())))
    expect(await run(client, 'uname -a')).toEqual({
      stdout: 'ran: uname -a\n',
      stderr: 'a warning\n',
      code: 3,
    })
    expect(s.auth.filter((a) => a.method === 'publickey').map((a) => a.username)).toContain('ci')
  })

  it('refuses a host it does not know before sending any credential, naming the fingerprint and what to do', async () => {
    const s = await server()
    const node = s.node('n1')
    const err = await connectSsh(node, KnownHosts.parse('/farm/known_hosts', '')).catch((e: Error) => e)
    expect(err).toBeInstanceOf(UnknownHostKeyError)
    expect((err as Error).message).toBe(
      `node n1 (ci@127.0.0.1:${s.port}) is not in /farm/known_hosts (it offered ${fingerprint(s.hostKeys[0]!.blob)}). ` +
        "Verify that fingerprint with the machine's owner, then add it: " +
        `\`ssh-keyscan -p ${s.port} 127.0.0.1 >> /farm/known_hosts\`.`,
    )
    expect(s.auth).toEqual([])
  })

  it('refuses a changed host key (reinstalled, or intercepted), with the known_hosts line, and sends nothing', async () => {
    const s = await server()
    const other = makeKey('ed25519')
    const err = await connectSsh(
      s.node('n1'),
      KnownHosts.parse('kh', `# farm keys\n${s.knownHosts(other)}`),
    ).catch((e: Error) => e)
    expect(err).toBeInstanceOf(HostKeyMismatchError)
    expect(err).toMatchObject({ line: 2, fingerprint: fingerprint(s.hostKeys[0]!.blob) })
    expect(s.auth).toEqual([])
  })

  it('asks a host with several keys for the type on record, so the one known is checked', async () => {
    const ed = makeKey('ed25519')
    const rsa = makeKey('rsa')
    const s = await server(() => startSshServer({ hostKeys: [ed, rsa] }))
    // Only the RSA key on record: ed25519 would be offered first by default, and refused.
    kept(await connectSsh(s.node('n1'), KnownHosts.parse('kh', s.knownHosts(rsa))))
    kept(await connectSsh(s.node('n1'), KnownHosts.parse('kh', s.knownHosts(ed))))
    expect(s.clients).toHaveLength(2)
  })

  it('says the server refused the key, and which public key must be in authorized_keys', async () => {
    const s = await server(() => startSshServer({ authorized: [makeKey('ed25519')] }))
    const node = s.node('n1')
    const err = await connectSsh(node, KnownHosts.parse('kh', s.knownHosts())).catch((e: Error) => e)
    expect(err).toBeInstanceOf(AuthenticationError)
    expect((err as Error).message).toBe(
      `authentication to node n1 (ci@127.0.0.1:${s.port}) failed: the server refused the key. ` +
        `Check that the public key of ${node.identityFile} is in ~ci/.ssh/authorized_keys on the node.`,
    )
  })

  it('says which key file it cannot read, without connecting', async () => {
    const s = await server()
    const missing = join(s.dir, 'no_such_key')
    const err = await connectSsh(
      s.node('n1', { identityFile: missing }),
      KnownHosts.parse('kh', s.knownHosts()),
    ).catch((e: Error) => e)
    expect(err).toBeInstanceOf(AuthenticationError)
    expect((err as Error).message).toMatch(
      new RegExp(`failed: cannot read identityFile ${missing}: ENOENT: no such file or directory`),
    )
    expect(s.sockets).toHaveLength(0)
  })

  it('a passphrase-protected key or a file that is no key: says so, and to use ssh-agent for a passphrase', async () => {
    const s = await server()
    const kh = KnownHosts.parse('kh', s.knownHosts())
    const locked = join(s.dir, 'locked')
    writeFileSync(locked, makeKey('ed25519', { passphrase: 'secret' }).private, { mode: 0o600 })
    const e1 = await connectSsh(s.node('n1', { identityFile: locked }), kh).catch((e: Error) => e)
    expect(e1).toBeInstanceOf(AuthenticationError)
    expect((e1 as Error).message).toMatch(
      new RegExp(
        `failed: cannot use ${locked}: .*passphrase.* \\(for a passphrase-protected key, load it into ssh-agent\\)`,
      ),
    )
    const junk = join(s.dir, 'junk')
    writeFileSync(junk, 'not a key\n')
    const e2 = await connectSsh(s.node('n1', { identityFile: junk }), kh).catch((e: Error) => e)
    expect(e2).toBeInstanceOf(AuthenticationError)
    expect((e2 as Error).message).toMatch(new RegExp(`cannot use ${junk}: .*Unsupported key format`))
    // Nothing was sent: the key is read before connecting.
    expect(s.auth).toEqual([])
  })

  it('without identityFile and without an agent, says there is nothing to log in with', async () => {
    const s = await server()
    vi.stubEnv('SSH_AUTH_SOCK', '')
    const err = await connectSsh(
      s.node('n1', { identityFile: null }),
      KnownHosts.parse('kh', s.knownHosts()),
    ).catch((e: Error) => e)
    expect(err).toBeInstanceOf(AuthenticationError)
    expect((err as Error).message).toBe(
      `authentication to node n1 (ci@127.0.0.1:${s.port}) failed: no identityFile is set and no ssh-agent is running ` +
        '(SSH_AUTH_SOCK is empty). No identityFile is set, so the ssh-agent was asked; add a key to the agent or set identityFile in the farm file.',
    )
    expect(s.sockets).toHaveLength(0)
  })

  describe('with an ssh-agent', () => {
    let agent: ChildProcess
    let agentSock: string
    let s: TestSshServer

    beforeAll(async () => {
      s = await startSshServer()
      agentSock = join(s.dir, 'agent.sock')
      agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' })
      await vi.waitFor(() => expect(existsSync(agentSock)).toBe(true), { timeout: 10_000, interval: 20 })
    })
    afterAll(async () => {
      agent.kill()
      await s.close()
    })

    it('logs in with a key the agent holds when no identityFile is set', async () => {
      vi.stubEnv('SSH_AUTH_SOCK', agentSock)
      const node = s.node('n1', { identityFile: null })
      const kh = KnownHosts.parse('kh', s.knownHosts())
      // An empty agent: refused, and the message says the agent was asked.
      const err = await connectSsh(node, kh).catch((e: Error) => e)
      expect(err).toBeInstanceOf(AuthenticationError)
      expect((err as Error).message).toContain(
        'the server refused the key. No identityFile is set, so the ssh-agent was asked',
      )
      execFileSync('ssh-add', ['-q', s.clientKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } })
      kept(await connectSsh(node, kh))
      expect(s.clients.length).toBeGreaterThanOrEqual(1)
    })
  })

  it('a port nothing listens on: connection refused, with the ssh command to try', async () => {
    const port = await closedPort()
    const s = await server()
    const err = await connectSsh(s.node('n1', { port }), KnownHosts.parse('kh', '')).catch((e: Error) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toBe(
      `cannot reach node n1 (ci@127.0.0.1:${port}): connection refused (nothing listens on that port). ` +
        `Check that the machine is up and sshd listens there (try: ssh -p ${port} ci@127.0.0.1).`,
    )
  })

  describe('a host that accepts TCP but never speaks SSH', () => {
    let mute: NetServer
    const accepted: Socket[] = []
    beforeAll(async () => {
      // Reads what it is sent, answers nothing.
      mute = createServer((sock) => accepted.push(sock.resume()))
      await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve))
    })
    afterAll(async () => {
      for (const sock of accepted) sock.destroy()
      await new Promise((resolve) => mute.close(resolve))
    })

    it('gives up after the handshake limit, 10 s unless told', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
      const port = (mute.address() as { port: number }).port
      const s = await server()
      const node = s.node('n1', { port })
      const nextAccepted = () => new Promise<Socket>((resolve) => mute.once('connection', resolve))

      const uncaught: Error[] = []
      const onUncaught = (e: Error) => uncaught.push(e)
      process.on('uncaughtException', onUncaught)
      onTestFinished(() => void process.off('uncaughtException', onUncaught))

      let accepted = nextAccepted()
      let settled = false
      const p = connectSsh(node, KnownHosts.parse('kh', '')).finally(() => (settled = true))
      p.catch(() => {})
      const sock = await accepted
      await vi.advanceTimersByTimeAsync(9_999)
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      const err = await p.catch((e: Error) => e)
      expect(err).toBeInstanceOf(NodeUnreachableError)
      expect((err as NodeUnreachableError).reason).toBe('no SSH handshake within the time limit')
      // The abandoned connection closes; that must not raise anything more in the process.
      await new Promise((resolve) => (sock.destroyed ? resolve(null) : sock.once('close', resolve)))
      await new Promise((resolve) => setImmediate(resolve))
      expect(uncaught).toEqual([])

      accepted = nextAccepted()
      const q = connectSsh(node, KnownHosts.parse('kh', ''), { timeoutMs: 2_000 })
      q.catch(() => {})
      await accepted
      await vi.advanceTimersByTimeAsync(2_000)
      await expect(q).rejects.toThrow(/no SSH handshake within the time limit/)
    })
  })

  it('a node that stops answering is dropped after 3 missed keepalives; the error surfaces only as close', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const s = await server()
    const client = kept(
      await connectSsh(s.node('n1'), KnownHosts.parse('kh', s.knownHosts()), { keepaliveMs: 1000 }),
    )
    let closed = false
    const close = new Promise((resolve) => client.once('close', () => resolve(null))).then(
      () => (closed = true),
    )
    // The machine freezes: its sshd reads nothing more.
    s.sockets[0]!.pause()
    await vi.advanceTimersByTimeAsync(3000)
    await new Promise((resolve) => setImmediate(resolve))
    expect(closed).toBe(false)
    // The fourth interval: three pings went unanswered. Without connectSsh's listener the
    // 'Keepalive timeout' error would be thrown in the process.
    await vi.advanceTimersByTimeAsync(1000)
    await close
  })

  it('uses a given stream instead of TCP, still checking the host key', async () => {
    const s = await server()
    const sock = tcpConnect(s.port, '127.0.0.1')
    await new Promise((resolve) => sock.once('connect', resolve))
    // The node's address is not used: the stream is the connection.
    const node = s.node('n1')
    const client = kept(await connectSsh(node, KnownHosts.parse('kh', s.knownHosts()), { sock }))
    expect((await run(client, 'true')).code).toBe(3)
    const sock2 = tcpConnect(s.port, '127.0.0.1')
    await new Promise((resolve) => sock2.once('connect', resolve))
    await expect(connectSsh(node, KnownHosts.parse('kh', ''), { sock: sock2 })).rejects.toBeInstanceOf(
      UnknownHostKeyError,
    )
  })
})

describe('forwardTo (ProxyJump)', () => {
  /** A jump host that dials what it is asked to on 127.0.0.1, as sshd with AllowTcpForwarding yes. */
  const jumpServer = (dialled: string[]) =>
    startSshServer({
      onTcpip: (accept, _reject, info) => {
        dialled.push(`${info.destIP}:${info.destPort}`)
        const out = tcpConnect(info.destPort, info.destIP)
        out.once('connect', () => {
          const ch = accept()
          ch.pipe(out).pipe(ch)
          ch.on('close', () => out.destroy())
          out.on('close', () => ch.close())
        })
        out.once('error', () => {})
      },
    })

  it("reaches a node through a channel of the jump host's connection, and checks the node's own key", async () => {
    const dialled: string[] = []
    const jump = await server(() => jumpServer(dialled))
    const inner = await server()
    const carrier = kept(await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts())))
    const node = inner.node('n2', { jump: 'bastion' })
    const channel = await forwardTo(carrier, 'bastion', node)
    const client = kept(await connectSsh(node, KnownHosts.parse('kh', inner.knownHosts()), { sock: channel }))
    expect(await run(client, 'hostname')).toMatchObject({ stdout: 'ran: hostname\n', code: 3 })
    expect(dialled).toEqual([`127.0.0.1:${inner.port}`])
    // The inner host's key is checked under its own address: the jump host's key recorded there
    // does not let an impostor through.
    const again = await forwardTo(carrier, 'bastion', node)
    const impostor = KnownHosts.parse('kh', `[127.0.0.1]:${inner.port} ${jump.hostKeys[0]!.public}\n`)
    await expect(connectSsh(node, impostor, { sock: again })).rejects.toBeInstanceOf(HostKeyMismatchError)
  })

  it('a jump host whose sshd does not forward: says to set AllowTcpForwarding', async () => {
    // No tcpip handler: the server refuses the channel as "administratively prohibited" (code 1).
    const jump = await server(() => startSshServer())
    const carrier = kept(await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts())))
    const err = await forwardTo(carrier, 'bastion', jump.node('n2', { host: '10.1.0.5', port: 22 })).catch(
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as NodeUnreachableError).reason).toBe(
      'the jump host bastion could not open a connection to 10.1.0.5:22: administratively prohibited ' +
        '(its sshd does not allow TCP forwarding: set AllowTcpForwarding yes there)',
    )
  })

  it('a jump host that cannot dial onwards: says nothing listens there, seen from the jump host', async () => {
    const jump = await server(() => startSshServer({ onTcpip: (_accept, reject) => reject() }))
    const carrier = kept(await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts())))
    const err = await forwardTo(carrier, 'bastion', jump.node('n2', { host: '10.1.0.5', port: 2222 })).catch(
      (e: Error) => e,
    )
    expect((err as NodeUnreachableError).reason).toBe(
      'the jump host bastion could not open a connection to 10.1.0.5:2222: connect failed ' +
        '(nothing listens there, seen from the jump host)',
    )
  })

  it("OpenSSH's wording: 'open failed' with code 1 is forwarding refused; its own reasons are kept", async () => {
    const node = { ...(await server()).node('n2'), host: '10.1.0.5', port: 22 }
    const failing = (message: string, reason: number) =>
      ({
        forwardOut: (_a: string, _b: number, _c: string, _d: number, cb: (e: Error) => void) =>
          cb(Object.assign(new Error(`(SSH) Channel open failure: ${message}`), { reason })),
      }) as unknown as Client
    const reason = (c: Client) => forwardTo(c, 'bastion', node).catch((e: NodeUnreachableError) => e.reason)
    // What OpenSSH's sshd sends when AllowTcpForwarding is no.
    expect(await reason(failing('open failed', 1))).toBe(
      'the jump host bastion could not open a connection to 10.1.0.5:22: administratively prohibited: open failed ' +
        '(its sshd does not allow TCP forwarding: set AllowTcpForwarding yes there)',
    )
    // What it sends when its connect() fails: the reason code adds nothing to that.
    expect(await reason(failing('Connection refused', 2))).toBe(
      'the jump host bastion could not open a connection to 10.1.0.5:22: Connection refused ' +
        '(nothing listens there, seen from the jump host)',
    )
    expect(await reason(failing('No route to host', 2))).toBe(
      'the jump host bastion could not open a connection to 10.1.0.5:22: No route to host',
    )
  })

  it('a jump host that never answers the channel request: gives up after the limit', async () => {
    const jump = await server(() => startSshServer({ onTcpip: () => {} }))
    const carrier = kept(await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts())))
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let settled = false
    const p = forwardTo(carrier, 'bastion', jump.node('n2', { host: '10.1.0.5', port: 22 })).finally(
      () => (settled = true),
    )
    p.catch(() => {})
    await vi.advanceTimersByTimeAsync(9_999)
    expect(settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await p.catch((e: NodeUnreachableError) => e.reason)).toBe(
      'the jump host bastion did not open a connection to 10.1.0.5:22 within 10000 ms',
    )
  })

  it('a jump connection that is already closed fails at once, saying so', async () => {
    const jump = await server(() => startSshServer())
    const carrier = await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts()))
    await new Promise((resolve) => {
      carrier.once('close', () => resolve(null))
      carrier.end()
    })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const err = await forwardTo(carrier, 'bastion', jump.node('n2')).catch((e: NodeUnreachableError) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as NodeUnreachableError).reason).toBe(
      'the connection to its jump host bastion is closed (Not connected)',
    )
    // No timer left behind to fire later.
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('describeNetworkError', () => {
  const e = (code: string | undefined, message = 'x') => Object.assign(new Error(message), { code })
  it('says in words what the socket error means', () => {
    expect(describeNetworkError(e('ECONNREFUSED'))).toBe('connection refused (nothing listens on that port)')
    expect(describeNetworkError(e('EHOSTUNREACH'))).toBe('no route to the host')
    expect(describeNetworkError(e('ENETUNREACH'))).toBe('no route to the host')
    expect(describeNetworkError(e('ENOTFOUND'))).toBe('the host name does not resolve')
    expect(describeNetworkError(e('EAI_AGAIN'))).toBe('the host name does not resolve')
    expect(describeNetworkError(e('ETIMEDOUT'))).toBe('the connection timed out')
    expect(describeNetworkError(e(undefined, 'Timed out while waiting for handshake'))).toBe(
      'no SSH handshake within the time limit',
    )
    expect(describeNetworkError(e('ECONNRESET', 'read ECONNRESET'))).toBe('read ECONNRESET')
  })
})

describe('keepalive defaults', () => {
  it('give up on a silent node within 15 s (issue 11: a lost node noticed within 15 s)', () => {
    expect(LOST_AFTER_MS).toBeLessThanOrEqual(15_000)
  })
})
