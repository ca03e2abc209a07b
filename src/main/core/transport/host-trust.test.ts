import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { HostKeyMismatchError, NodeUnreachableError, UnknownHostKeyError } from '../farm/farm-errors'
import type { FarmNode } from '../farm/farm-model'
import {
  ChangedHostKeyError,
  FingerprintMismatchError,
  HostTrust,
  hostKeyView,
  scanHostKey,
  trustHostKey,
  trustStorePath,
  UntrustedHostError,
} from './host-trust'
import { fingerprint } from './known-hosts'
import { connectSsh } from './ssh-connection'
import { farmNode } from '../../../../test/support/farm-node'
import { closedPort, makeKey, startSshServer, type TestSshServer } from '../../../../test/support/ssh-server'

let dir: string
let a: { line: string; blob: Buffer }
let b: { line: string; blob: Buffer }

function keygen(name: string): { line: string; blob: Buffer } {
  const file = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', file])
  const [t, b64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/)
  return { line: `${t} ${b64}`, blob: Buffer.from(b64!, 'base64') }
}

const node: FarmNode = farmNode('n1', { host: 'Builder.LAN', port: 2222 })

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-trust-'))
  a = keygen('a')
  b = keygen('b')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A fresh case: the farm's known_hosts with `farmText`, the user's (empty), a data dir with `storeText`. */
function setup(farmText = '', storeText: string | null = null) {
  const d = mkdtempSync(join(dir, 'case-'))
  const farmKh = join(d, 'farm_known_hosts')
  writeFileSync(farmKh, farmText)
  const dataDir = join(d, 'data')
  if (storeText !== null) {
    execFileSync('mkdir', ['-p', dataDir])
    writeFileSync(trustStorePath(dataDir), storeText)
  }
  const user = join(d, 'user_known_hosts')
  const make = (acceptNew = false, withStore = true) =>
    HostTrust.forFarm(
      { knownHosts: farmKh },
      { dataDir: withStore ? dataDir : null, acceptNew, userKnownHosts: user },
    )
  return { farmKh, store: trustStorePath(dataDir), user, make }
}

describe('HostTrust', () => {
  it('trusts a key held by the farm file, the user file or the store', () => {
    const c = setup(`[builder.lan]:2222 ${a.line}\n`)
    expect(c.make().sources).toEqual([c.farmKh, c.user, c.store])
    expect(c.make().check(node, a.blob)).toBeNull()
    expect(c.make().verdict('builder.lan', 2222, a.blob)).toEqual({
      kind: 'trusted',
      file: c.farmKh,
      line: 1,
    })
    const s = setup('', `# mine\n[builder.lan]:2222 ${a.line}\n`)
    expect(s.make().verdict(node.host, node.port, a.blob)).toEqual({
      kind: 'trusted',
      file: s.store,
      line: 2,
    })
    expect(
      s
        .make()
        .keysFor(node.host, node.port)
        .map((k) => k.line),
    ).toEqual([2])
  })

  it('refuses an unknown host with its fingerprint and how to trust it; records nothing', () => {
    const c = setup()
    const err = c.make().check(node, a.blob)
    expect(err).toBeInstanceOf(UntrustedHostError)
    expect(err).toBeInstanceOf(UnknownHostKeyError)
    expect(err!.message).toBe(
      `node n1 (ci@Builder.LAN:2222) is not a known host: it offered the ssh-ed25519 key ${fingerprint(a.blob)}, ` +
        `which none of ${c.farmKh}, ${c.user}, ${c.store} holds. Nothing was sent to it. Check that fingerprint with the ` +
        "machine's owner (on the machine: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then trust it: " +
        '`yardmaster node n1 trust` (or pass --accept-new-host-keys to record every new host key once).',
    )
    expect(() => readFileSync(c.store)).toThrow(/ENOENT/)
    // Without a data directory there is no store to trust into: the farm's file is named instead.
    expect(c.make(true, false).check(node, a.blob)!.message).toContain(`then add it to ${c.farmKh}.`)
  })

  it('with acceptNew, records a new host in the store (0600) and trusts it from then on', () => {
    const c = setup()
    expect(c.make(true).check(node, a.blob)).toBeNull()
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${a.line}\n`)
    expect(statSync(c.store).mode & 0o777).toBe(0o600)
    // Trusted now without acceptNew, and only that key.
    expect(c.make().check(node, a.blob)).toBeNull()
    expect(c.make(true).check(node, b.blob)).toBeInstanceOf(ChangedHostKeyError)
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${a.line}\n`)
    // Another port is another host.
    expect(c.make().check({ ...node, port: 22 }, a.blob)).toBeInstanceOf(UntrustedHostError)
  })

  it('refuses a changed key, even with acceptNew, saying what happened and what to do; never overwrites', () => {
    const c = setup('', `[builder.lan]:2222 ${a.line}\n`)
    const err = c.make(true).check(node, b.blob) as ChangedHostKeyError
    expect(err).toBeInstanceOf(HostKeyMismatchError)
    expect(err.knownFingerprint).toBe(fingerprint(a.blob))
    expect(err.message).toBe(
      `the host key of node n1 (ci@Builder.LAN:2222) has CHANGED: it now offers the ssh-ed25519 key ${fingerprint(b.blob)}, ` +
        `but ${c.store}:1 holds ${fingerprint(a.blob)} for [builder.lan]:2222. The connection was refused and nothing was recorded. ` +
        'The machine may have been reinstalled or its keys regenerated, or someone may be intercepting the connection: ' +
        'ask its owner before going on. If the change is expected, remove the old key ' +
        `(\`ssh-keygen -R '[builder.lan]:2222' -f ${c.store}\`), then check and record the new one with \`yardmaster node n1 trust\`.`,
    )
    expect(() => c.make().record(node, b.blob)).toThrow(ChangedHostKeyError)
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${a.line}\n`)
  })

  it('a different key anywhere outweighs the same key elsewhere', () => {
    const c = setup(`[builder.lan]:2222 ${b.line}\n`, `[builder.lan]:2222 ${a.line}\n`)
    expect(c.make().verdict(node.host, node.port, a.blob)).toMatchObject({
      kind: 'changed',
      file: c.farmKh,
      line: 1,
    })
    expect(c.make().check(node, a.blob)).toBeInstanceOf(ChangedHostKeyError)
  })

  it('refuses a revoked key', () => {
    const c = setup(`@revoked * ${a.line}\n`, `[builder.lan]:2222 ${a.line}\n`)
    const err = c.make(true).check(node, a.blob)
    expect(err).toBeInstanceOf(ChangedHostKeyError)
    expect(err!.message).toContain(`is marked @revoked in ${c.farmKh}:1`)
  })

  it('record says where a key already trusted is, and needs a store', () => {
    const c = setup(`[builder.lan]:2222 ${a.line}\n`)
    expect(c.make().record(node, a.blob)).toEqual({ file: c.farmKh })
    expect(() => c.make(false, false).record(node, a.blob)).toThrow(/no data directory/)
  })
})

describe('hostKeyView and trustHostKey (trust on first use, as the API and the CLI do it)', () => {
  const view = (over: object) => ({
    node: 'n1',
    keyType: 'ssh-ed25519',
    fingerprint: fingerprint(a.blob),
    knownFingerprint: null,
    recorded: false,
    ...over,
  })

  it('says what each verdict is, and where', () => {
    const unknown = setup()
    expect(hostKeyView(node, unknown.make(), a.blob)).toEqual(
      view({ verdict: 'unknown', file: unknown.store, line: null }),
    )
    const trusted = setup(`[builder.lan]:2222 ${a.line}\n`)
    expect(hostKeyView(node, trusted.make(), a.blob)).toEqual(
      view({ verdict: 'trusted', file: trusted.farmKh, line: 1 }),
    )
    const changed = setup('', `# old\n[builder.lan]:2222 ${b.line}\n`)
    expect(hostKeyView(node, changed.make(), a.blob)).toEqual(
      view({ verdict: 'changed', file: changed.store, line: 2, knownFingerprint: fingerprint(b.blob) }),
    )
    const revoked = setup(`@revoked * ${a.line}\n`)
    expect(hostKeyView(node, revoked.make(), a.blob)).toEqual(
      view({ verdict: 'revoked', file: revoked.farmKh, line: 1 }),
    )
  })

  it('records an unknown key when the fingerprint shown is still the one offered', () => {
    const c = setup()
    expect(trustHostKey(node, c.make(), a.blob, ` ${fingerprint(a.blob)}\n`)).toEqual(
      view({ verdict: 'unknown', file: c.store, line: null, recorded: true }),
    )
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${a.line}\n`)
    // Once more: already trusted, nothing written.
    expect(trustHostKey(node, c.make(), a.blob, fingerprint(a.blob))).toEqual(
      view({ verdict: 'trusted', file: c.store, line: 1 }),
    )
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${a.line}\n`)
  })

  it('records nothing when the key offered now is not the one shown', () => {
    const c = setup()
    const err = (() => {
      try {
        trustHostKey(node, c.make(), b.blob, fingerprint(a.blob))
      } catch (e) {
        return e as Error
      }
    })()
    expect(err).toBeInstanceOf(FingerprintMismatchError)
    expect(err!.message).toBe(
      `node n1 (ci@Builder.LAN:2222) now offers the ssh-ed25519 key ${fingerprint(b.blob)}, not ${fingerprint(a.blob)}, ` +
        "the one that was shown: nothing was recorded. Look at the key it offers again and check that one with the machine's owner.",
    )
    expect(() => readFileSync(c.store)).toThrow(/ENOENT/)
  })

  it('refuses a changed or revoked key with the full story and never overwrites the record', () => {
    const c = setup('', `[builder.lan]:2222 ${b.line}\n`)
    expect(() => trustHostKey(node, c.make(), a.blob, fingerprint(a.blob))).toThrow(/has CHANGED/)
    expect(readFileSync(c.store, 'utf8')).toBe(`[builder.lan]:2222 ${b.line}\n`)
    const r = setup(`@revoked * ${a.line}\n`)
    expect(() => trustHostKey(node, r.make(), a.blob, fingerprint(a.blob))).toThrow(/is marked @revoked/)
    expect(() => readFileSync(r.store)).toThrow(/ENOENT/)
  })
})

describe('scanHostKey (what ssh-keyscan does), against an SSH server in this process', () => {
  const cleanup: Array<() => unknown> = []
  afterEach(async () => {
    vi.useRealTimers()
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  async function sshd(opts: Parameters<typeof startSshServer>[0] = {}): Promise<TestSshServer> {
    const srv = await startSshServer(opts)
    cleanup.push(() => srv.close())
    return srv
  }
  /** A TCP server doing `onConnection` with each connection, instead of SSH. */
  async function tcpHost(onConnection: (sock: Socket) => void): Promise<{ server: Server; port: number }> {
    const sockets: Socket[] = []
    const server = createServer((sock) => {
      sockets.push(sock)
      sock.on('error', () => {})
      onConnection(sock)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanup.push(() => {
      for (const sock of sockets) sock.destroy()
      return new Promise((resolve) => server.close(resolve))
    })
    return { server, port: (server.address() as { port: number }).port }
  }

  it('reads the key a node offers without logging in', async () => {
    const srv = await sshd()
    const key = await scanHostKey(srv.node('n1'))
    expect(fingerprint(key)).toBe(fingerprint(srv.hostKeys[0]!.blob))
    expect(srv.auth).toEqual([])
    expect(srv.clients).toEqual([])
  })

  it('asks for the key type on record, as a connection would, when the host has several', async () => {
    const ed = makeKey('ed25519')
    const rsa = makeKey('rsa')
    const srv = await sshd({ hostKeys: [ed, rsa] })
    expect((await scanHostKey(srv.node('n1'))).equals(ed.blob)).toBe(true)
    const known = [{ type: 'ssh-rsa', key: rsa.blob, line: 1 }]
    expect((await scanHostKey(srv.node('n1'), { known })).equals(rsa.blob)).toBe(true)
  })

  it('scans through a given stream (a jump host channel)', async () => {
    const srv = await sshd()
    const sock = tcpConnect(srv.port, '127.0.0.1')
    await new Promise((resolve) => sock.once('connect', resolve))
    const key = await scanHostKey(srv.node('n1', { host: '10.1.0.5' }), { sock })
    expect(key.equals(srv.hostKeys[0]!.blob)).toBe(true)
  })

  it('trust on first use: scanned, shown as unknown, recorded, then the connection is trusted', async () => {
    const srv = await sshd()
    const node = srv.node('n1')
    const c = setup()
    const key = await scanHostKey(node)
    expect(hostKeyView(node, c.make(), key)).toMatchObject({ verdict: 'unknown', file: c.store })
    await expect(connectSsh(node, c.make())).rejects.toBeInstanceOf(UntrustedHostError)
    expect(trustHostKey(node, c.make(), key, fingerprint(key))).toMatchObject({ recorded: true })
    const client = await connectSsh(node, c.make())
    client.end()
    expect(srv.clients).toHaveLength(1)
  })

  it('a port nothing listens on: connection refused', async () => {
    const port = await closedPort()
    const err = await scanHostKey(farmNode('n1', { host: '127.0.0.1', port })).catch((e: Error) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as NodeUnreachableError).reason).toBe('connection refused (nothing listens on that port)')
  })

  it('an address that cannot be dialled at all rejects with the reason; it does not throw', async () => {
    const p = scanHostKey(farmNode('n1', { host: '127.0.0.1', port: 70_000 }))
    await expect(p).rejects.toBeInstanceOf(NodeUnreachableError)
    await expect(p).rejects.toThrow(/: Port should be >= 0 and < 65536/)
  })

  it('a host that hangs up before offering a key says so', async () => {
    // Closes at once, before saying anything.
    const rude = await tcpHost((sock) => sock.destroy())
    await expect(scanHostKey(farmNode('n1', { host: '127.0.0.1', port: rude.port }))).rejects.toThrow(
      /^cannot reach node n1 \(ci@127\.0\.0\.1:\d+\): Connection lost before handshake\./,
    )
    // Says it is SSH, then closes: the key exchange never came.
    const greeter = await tcpHost((sock) => sock.end('SSH-2.0-OpenSSH_9.6\r\n'))
    const err = await scanHostKey(farmNode('n1', { host: '127.0.0.1', port: greeter.port })).catch(
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as NodeUnreachableError).reason).toBe('the connection closed before a host key was offered')
  })

  it('gives up on a host that never answers after the limit, 10 s unless told', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let accepted!: () => void
    const connected = new Promise<void>((resolve) => (accepted = resolve))
    const mute = await tcpHost((sock) => (sock.resume(), accepted()))
    let settled = false
    const p = scanHostKey(farmNode('n1', { host: '127.0.0.1', port: mute.port })).finally(
      () => (settled = true),
    )
    p.catch(() => {})
    await connected
    await vi.advanceTimersByTimeAsync(9_999)
    expect(settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await p.catch((e: NodeUnreachableError) => e.reason)).toBe(
      'no SSH handshake within the time limit',
    )
  })
})
