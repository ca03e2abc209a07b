/**
 * NodeSessions.tunnel over real SSH, against SSH servers in this process
 * (test/support/ssh-server.ts): a jump host that forwards to an inner node's sshd, and the lease
 * on the jump host's pooled connection given back when the tunnel ends. With mocks:
 * node-sessions.test.ts.
 */
import { connect as tcpConnect } from 'node:net'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeUnreachableError } from '../farm/farm-errors'
import { KnownHosts } from '../transport/known-hosts'
import { SshPool } from '../transport/ssh-pool'
import { NodeSessions } from './node-sessions'
import { farmOf } from '../../../../test/support/farm-node'
import {
  closedPort,
  startSshServer,
  type SshServerOptions,
  type TestSshServer,
} from '../../../../test/support/ssh-server'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})
async function sshd(opts: SshServerOptions = {}): Promise<TestSshServer> {
  const s = await startSshServer(opts)
  cleanup.push(() => s.close())
  return s
}

/** A jump host that dials what it is asked to, recording where. */
async function jumpHost(dialled: string[]): Promise<TestSshServer> {
  return sshd({
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
}

async function setup(bastion: TestSshServer, inner: TestSshServer) {
  const farm = farmOf([bastion.node('bastion'), inner.node('n2', { jump: 'bastion' })])
  const pool = new SshPool()
  cleanup.push(() => pool.closeAll())
  const sessions = new NodeSessions(farm, {
    pool,
    hostKeys: KnownHosts.parse('kh', bastion.knownHosts()),
    timeoutMs: 30_000,
  })
  return { farm, sessions, bastionNode: farm.nodes[0]!, innerNode: farm.nodes[1]! }
}

/** The first bytes the far end sends. */
const firstData = (ch: Duplex) => new Promise<string>((resolve) => ch.once('data', (d) => resolve(String(d))))
/** Resolves once every connection the server accepted is closed. */
const allClosed = (s: TestSshServer) =>
  Promise.all(s.sockets.map((sock) => (sock.destroyed ? null : new Promise((r) => sock.once('close', r)))))

describe('NodeSessions.tunnel', () => {
  it('gives nothing for a node reached directly, and connects nowhere', async () => {
    const bastion = await sshd()
    const inner = await sshd()
    const { sessions, bastionNode } = await setup(bastion, inner)
    expect(await sessions.tunnel(bastionNode)).toBeUndefined()
    expect(bastion.sockets).toEqual([])
  })

  it("opens a channel to the node's sshd through the jump host, and gives the jump lease back when it closes", async () => {
    const dialled: string[] = []
    const bastion = await jumpHost(dialled)
    const inner = await sshd()
    const { sessions, innerNode } = await setup(bastion, inner)
    const a = (await sessions.tunnel(innerNode))!
    const b = (await sessions.tunnel(innerNode))!
    // The inner node's own sshd answers on each: a connection of its own can be made over it.
    expect(await firstData(a)).toMatch(/^SSH-2\.0-/)
    expect(await firstData(b)).toMatch(/^SSH-2\.0-/)
    expect(dialled).toEqual([`127.0.0.1:${inner.port}`, `127.0.0.1:${inner.port}`])
    // Both ride the jump host's one pooled connection.
    expect(bastion.clients).toHaveLength(1)
    expect(bastion.sockets).toHaveLength(1)
    a.destroy()
    b.destroy()
    // The last lease given back, the pool closes the jump host's connection.
    await allClosed(bastion)
  })

  it('closeAll gives back the lease of a tunnel still open', async () => {
    const bastion = await jumpHost([])
    const inner = await sshd()
    const { sessions, innerNode } = await setup(bastion, inner)
    const ch = (await sessions.tunnel(innerNode))!
    expect(await firstData(ch)).toMatch(/^SSH-2\.0-/)
    await sessions.closeAll()
    await allClosed(bastion)
  })

  it('says the jump host refused to open the channel, and gives the lease back', async () => {
    // Without onTcpip the server refuses direct-tcpip channels.
    const bastion = await sshd()
    const inner = await sshd()
    const { sessions, innerNode } = await setup(bastion, inner)
    const err = await sessions.tunnel(innerNode).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toContain(
      `the jump host bastion could not open a connection to 127.0.0.1:${inner.port}`,
    )
    await allClosed(bastion)
  })

  it('says the jump host cannot be reached, with its reason', async () => {
    const bastion = await sshd()
    const inner = await sshd()
    const port = await closedPort()
    const farm = farmOf([bastion.node('bastion', { port }), inner.node('n2', { jump: 'bastion' })])
    const pool = new SshPool()
    cleanup.push(() => pool.closeAll())
    const sessions = new NodeSessions(farm, { pool, hostKeys: KnownHosts.parse('kh', bastion.knownHosts()) })
    const err = await sessions.tunnel(farm.nodes[1]!).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toMatch(
      /^cannot reach node n2 \(ci@127\.0\.0\.1:\d+ via bastion\): its jump host bastion cannot be reached: cannot reach node bastion /,
    )
  })
})
