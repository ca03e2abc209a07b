/**
 * testConnection over real SSH connections, against an SSH server in this process
 * (test/support/ssh-server.ts): what is asked of the node, what a broken shell reads as, and that
 * the connection it opened is closed afterwards. Timings are only checked to be there: a busy
 * machine makes any figure. With mocks: connection-test.test.ts; the lab: test/integration.
 */
import { connect as tcpConnect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { testConnection } from './connection-test'
import { KnownHosts } from '../transport/known-hosts'
import { forwardTo, connectSsh } from '../transport/ssh-connection'
import { dialStdio, startEngine } from '../../../../test/support/docker-engine'
import {
  startSshServer,
  type SshServerOptions,
  type TestSshServer,
} from '../../../../test/support/ssh-server'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})
async function sshd(opts: SshServerOptions): Promise<TestSshServer> {
  const s = await startSshServer(opts)
  cleanup.push(() => s.close())
  return s
}
/** Resolves once every connection the server accepted is closed. */
const allClosed = (s: TestSshServer) =>
  Promise.all(s.sockets.map((sock) => (sock.destroyed ? null : new Promise((r) => sock.once('close', r)))))

/** A login shell whose `true` exits with `code`. */
const shell = (code: number): SshServerOptions => ({
  onExec: ({ channel }) => {
    channel.exit(code)
    channel.end()
  },
})

describe('testConnection over SSH', () => {
  it('on a shell node, runs `true` once per sample on its own connection, then closes it', async () => {
    const s = await sshd(shell(0))
    const r = await testConnection(
      s.node('n1', { executor: 'shell' }),
      KnownHosts.parse('kh', s.knownHosts()),
      {
        samples: 3,
      },
    )
    expect(r).toMatchObject({
      node: 'n1',
      firstRequestMs: null,
      engineVersion: null,
      apiVersion: null,
      samples: 3,
    })
    expect(r.handshakeMs).toBeGreaterThanOrEqual(0)
    expect(r.roundTripMs).toBeGreaterThanOrEqual(0)
    expect(s.sessions.commands).toEqual(['true', 'true', 'true'])
    await allClosed(s)
  })

  it("says so when the node's `true` fails (a broken login shell), and still closes its connection", async () => {
    const s = await sshd(shell(1))
    await expect(
      testConnection(s.node('n1', { executor: 'shell' }), KnownHosts.parse('kh', s.knownHosts())),
    ).rejects.toThrow('`true` exited 1')
    expect(s.sessions.commands).toEqual(['true'])
    await allClosed(s)
  })

  it("on a docker node, asks the engine's version once and pings it, over one dial-stdio channel", async () => {
    const engine = await startEngine()
    cleanup.push(() => engine.close())
    const s = await sshd({ onExec: dialStdio(engine) })
    const r = await testConnection(s.node('n1'), KnownHosts.parse('kh', s.knownHosts()), { samples: 2 })
    expect(r).toMatchObject({ engineVersion: '27.5.1', apiVersion: '1.47', samples: 2 })
    expect(r.firstRequestMs).toBeGreaterThanOrEqual(0)
    expect(engine.requests.map((q) => q.replace(/\/v[\d.]+\//, '/'))).toEqual([
      'GET /version',
      'GET /_ping',
      'GET /_ping',
    ])
    expect(s.sessions.commands).toEqual(['docker system dial-stdio'])
    await allClosed(s)
  })

  it('behind a jump host, handshakes over the channel the tunnel gives', async () => {
    const inner = await sshd(shell(0))
    const dialled: string[] = []
    const jump = await sshd({
      onTcpip: (accept, _reject, info) => {
        dialled.push(`${info.destIP}:${info.destPort}`)
        const out = tcpConnect(info.destPort, info.destIP, () => {
          const ch = accept()
          ch.pipe(out).pipe(ch)
          ch.on('close', () => out.destroy())
        })
        out.on('error', () => {})
      },
    })
    const carrier = await connectSsh(jump.node('bastion'), KnownHosts.parse('kh', jump.knownHosts()))
    cleanup.push(() => carrier.end())
    const node = inner.node('n2', { executor: 'shell', jump: 'bastion' })
    const r = await testConnection(node, KnownHosts.parse('kh', inner.knownHosts()), {
      samples: 1,
      tunnel: () => forwardTo(carrier, 'bastion', node),
    })
    expect(r.samples).toBe(1)
    expect(inner.sessions.commands).toEqual(['true'])
    // The inner connection came through the jump host, which dialled the node for it.
    expect(dialled).toEqual([`127.0.0.1:${inner.port}`])
    expect(inner.clients).toHaveLength(1)
  })
})
