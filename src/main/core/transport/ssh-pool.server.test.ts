/**
 * The pool over real SSH connections, against SSH servers in this process
 * (test/support/ssh-server.ts): the session budget with real channels, a dropped or frozen
 * connection reopened, a jump host's channel. The pool's logic with fake connections:
 * ssh-pool.test.ts; the lab's sshd: test/integration/ssh-pool.test.ts.
 */
import { connect as tcpConnect } from 'node:net'
import type { ClientChannel } from 'ssh2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { KnownHosts } from './known-hosts'
import type { LinkState } from './link-breaker'
import { SshPool, type LinkTarget, type SshLease } from './ssh-pool'
import { startSshServer, type TestSshServer } from '../../../../test/support/ssh-server'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  vi.useRealTimers()
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function server(opts: Parameters<typeof startSshServer>[0] = {}): Promise<TestSshServer> {
  const s = await startSshServer(opts)
  cleanup.push(() => s.close())
  return s
}

function pool(opts: ConstructorParameters<typeof SshPool>[0] = {}): SshPool {
  // random 0: a dropped connection is retried at once.
  const p = new SshPool({ random: () => 0, ...opts })
  cleanup.push(() => p.closeAll())
  return p
}

const targetOf = (s: TestSshServer, name: string, via: LinkTarget | null = null): LinkTarget => ({
  node: s.node(name),
  via,
  hostKeys: KnownHosts.parse(`${name}_known_hosts`, s.knownHosts()),
})

/** Runs a command through the lease, reading its output as command runners do. */
function start(lease: SshLease, command: string): Promise<{ ch: ClientChannel; output: Promise<string> }> {
  return new Promise((resolve, reject) =>
    lease.exec.exec(command, (err, ch) => {
      if (err) return reject(err)
      let out = ''
      ch.stderr.resume()
      ch.on('data', (d: Buffer) => (out += d.toString()))
      resolve({ ch, output: new Promise((done) => ch.on('close', () => done(out))) })
    }),
  )
}

/** Runs a command through the lease: its output. */
async function run(lease: SshLease, command: string): Promise<string> {
  return (await start(lease, command)).output
}

/** Waits for the link to reach `kind`. */
function reaches(p: SshPool, kind: LinkState['kind']): Promise<LinkState> {
  return new Promise((resolve) => {
    const off = p.subscribe((c) => {
      if (c.to.kind === kind) {
        off()
        resolve(c.to)
      }
    })
  })
}

/** A server whose commands print their name and exit, except `hold`, which waits for release. */
async function holdingServer() {
  const held: Array<{ end: () => void }> = []
  const s = await server({
    onExec: ({ command, channel }) => {
      const end = () => {
        channel.exit(0)
        channel.end()
      }
      if (command.startsWith('hold')) held.push({ end })
      else {
        channel.write(`${command}\n`)
        end()
      }
    },
  })
  return { s, held }
}

describe('SshPool over real SSH connections', () => {
  it("never opens more than sshd's 10 sessions on a connection: the 11th and 12th open a second connection", async () => {
    const { s, held } = await holdingServer()
    const lease = pool().lease(targetOf(s, 'n1'))
    cleanup.push(() => lease.release())
    const channels = Array.from({ length: 12 }, (_, i) => start(lease, `hold ${i}`))
    await vi.waitFor(() => expect(s.sessions.open).toBe(12))
    expect(s.clients).toHaveLength(2)
    expect(s.sessions.peakPerClient).toEqual([10, 2])
    // A command given up by its caller (its channel destroyed) ends its session too.
    ;(await channels[1]!).ch.destroy()
    await vi.waitFor(() => expect(s.sessions.open).toBe(11))
    for (const h of held.splice(0)) h.end()
    await Promise.all(channels.map(async (c) => (await c).output))
    // The next command takes a free session on a connection already open.
    expect(await run(lease, 'after')).toBe('after\n')
    expect(s.clients).toHaveLength(2)
  })

  it('reopens a dropped connection on its own; commands follow the new one', async () => {
    const { s } = await holdingServer()
    const p = pool()
    const target = targetOf(s, 'n1')
    const lease = p.lease(target)
    cleanup.push(() => lease.release())
    expect(await run(lease, 'first')).toBe('first\n')
    const first = lease.client
    const back = reaches(p, 'backoff')
    const again = reaches(p, 'connected')
    // The machine's sshd goes away under the connection.
    s.sockets[0]!.destroy()
    expect(await back).toMatchObject({
      kind: 'backoff',
      failures: 0,
      lastError: expect.stringMatching(/^the connection to n1 \(ci@127\.0\.0\.1:\d+\) dropped/),
    })
    await again
    expect(lease.client).not.toBe(first)
    expect(await run(lease, 'second')).toBe('second\n')
    expect(s.clients).toHaveLength(2)
  })

  it('drops a frozen connection after three missed keepalives and reconnects once the node answers', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const { s } = await holdingServer()
    const p = pool({ keepaliveMs: 1000 })
    const lease = p.lease(targetOf(s, 'n1'))
    cleanup.push(() => lease.release())
    await lease.acquire()
    const back = reaches(p, 'backoff')
    s.sockets[0]!.pause()
    await vi.advanceTimersByTimeAsync(4000)
    expect(await back).toMatchObject({ lastError: expect.stringMatching(/dropped: Keepalive timeout$/) })
    await reaches(p, 'connected')
    expect(await run(lease, 'after')).toBe('after\n')
  })

  it("carries a node behind a jump host on a channel of the jump host's own connection", async () => {
    const inner = (await holdingServer()).s
    const dialled: string[] = []
    const jump = await server({
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
    const p = pool()
    const lease = p.lease(targetOf(inner, 'n2', targetOf(jump, 'bastion')))
    expect(await run(lease, 'hostname')).toBe('hostname\n')
    expect(dialled).toEqual([`127.0.0.1:${inner.port}`])
    expect([jump.clients.length, inner.clients.length]).toEqual([1, 1])
    // The last user gone, both connections close: the inner one, then the jump host's.
    const closed = Promise.all(
      [jump, inner].map((srv) => new Promise((r) => srv.sockets[0]!.once('close', r))),
    )
    lease.release()
    await closed
    expect(p.stateOf(targetOf(jump, 'bastion'))).toEqual({ kind: 'idle' })
  })
})
