/**
 * The node part of the API on the lab: the Backend as `serve` and Electron build it
 * (createAppBackend: history, farm service, health monitor running), called in-process by method
 * name with untrusted arguments, then once through the real `yardmaster serve` over its
 * WebSocket. Real sshd, real dockerd; what the API did is checked on the hosts' own engines and
 * in the files it writes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvents, EventName } from '../../src/shared/api'
import type { Envelope } from '../../src/shared/api'
import type {
  ConnectionTestView,
  ContainerView,
  HostKeyView,
  ImageCopyView,
  ImageView,
  NodeEventRecord,
  NodeLiveView,
  NodeStatusView,
  PruneReport,
  Series,
} from '../../src/shared/model'
import { createAppBackend, type AppBackend } from '../../src/main/api/app-backend'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import { fingerprint } from '../../src/main/core/transport/known-hosts'
import { apiSocket } from '../support/api-socket'
import { tempDir } from '../support/cli'
import { host, hostEngine, lab } from '../support/lab'
import { serve } from '../support/serve'

const NODES = ['n1', 'n2', 'n3']

async function removeImage(hostName: string, image: string): Promise<void> {
  await hostEngine(hostName)
    .getImage(image)
    .remove()
    .catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 404) throw e
    })
}

function fingerprintOf(name: string): string {
  const b64 = readFileSync(host(name).hostKeyPub, 'utf8').trim().split(/\s+/)[1]!
  return fingerprint(Buffer.from(b64, 'base64'))
}

/** An app backend on `farmFile` with a fresh data dir, its events kept. */
function start(farmFile: string, farmOptions?: Parameters<typeof createAppBackend>[0]['farmOptions']) {
  const app = createAppBackend({
    dataDir: tempDir('ym-node-api-'),
    farm: loadFarmFile(farmFile),
    version: 'test',
    farmOptions,
  })
  const events: Array<{ event: EventName; payload: unknown }> = []
  app.backend.subscribe((event, payload) => events.push({ event, payload }))
  const ok = async <T>(method: string, args: unknown = {}): Promise<T> => {
    const env = await app.backend.invoke(method, args)
    if (!env.ok) throw new Error(`${method} failed: ${env.error.name}: ${env.error.message}`)
    return env.result as T
  }
  const failed = async (method: string, args: unknown) => {
    const env = await app.backend.invoke(method, args)
    if (env.ok) throw new Error(`${method} answered ${JSON.stringify(env.result)}, not an error`)
    return env.error
  }
  /** Polls farm.nodes until `match` holds for the node; rejects after `ms`. */
  const until = async (name: string, match: (n: NodeLiveView) => boolean, ms: number) => {
    const deadline = Date.now() + ms
    for (;;) {
      const n = (await ok<NodeLiveView[]>('farm.nodes')).find((x) => x.name === name)!
      if (match(n)) return n
      if (Date.now() > deadline) throw new Error(`${name} is still ${JSON.stringify(n)} after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const changes = (name: string) =>
    events
      .filter((e) => e.event === 'node.changed' && (e.payload as NodeLiveView).name === name)
      .map((e) => e.payload as NodeLiveView)
  return { app, events, ok, failed, until, changes }
}

describe('the node API on the lab (Backend in-process)', () => {
  let t: ReturnType<typeof start>
  let app: AppBackend
  beforeAll(() => {
    lab()
    t = start(lab().farmFile)
    app = t.app
  })
  afterAll(() => app?.close())

  it('farm.nodes: n1, n2, n3 online with samples within 15 s, announced by node.changed', async () => {
    const t0 = Date.now()
    for (const name of NODES) await t.until(name, (n) => n.health === 'online' && n.sample !== null, 15_000)
    console.log(`all nodes online with a sample after ${Date.now() - t0} ms`)
    const nodes = await t.ok<NodeLiveView[]>('farm.nodes')
    expect(nodes.map((n) => n.name)).toEqual(NODES)
    for (const n of nodes) {
      const h = host(n.name)
      expect(n).toMatchObject({
        address: `yardlab@${h.address}:2222`,
        executor: 'docker',
        slots: h.slots,
        health: 'online',
        healthReasons: [],
        unreachableCause: null,
        admin: 'active',
        canTakeNewJobs: true,
        description: 'online',
        source: { file: lab().farmFile },
      })
      expect(n.labels).toEqual(expect.arrayContaining(h.farmLabels))
      expect(n.sample!.cpus).toBeGreaterThan(0)
      expect(n.sample!.engineMs).not.toBeNull()
      expect(JSON.stringify(n)).not.toContain('id_ed25519')
      // Announced: the node as farm.nodes shows it, online, with its sample.
      expect(t.changes(n.name).some((c) => c.health === 'online' && c.sample !== null)).toBe(true)
    }
    // Samples keep coming, each announced.
    const before = t.changes('n1').length
    await t.until('n1', () => t.changes('n1').length > before, 10_000)
    const series = await t.ok<Series>('node.series', { node: 'n1', from: Date.now() - 60_000 })
    expect(series.resolution).toBe('sample')
    expect(series.points.length).toBeGreaterThanOrEqual(2)
  })

  it('node.admin: cordon, drain, resume change the state at once, are in node.events; illegal moves refused', async () => {
    const name = 'n2'
    await t.until(name, (n) => n.health === 'online', 15_000)
    // Drained needs no job of ours there (integration files run one at a time; the lab is ours).
    const ours = await hostEngine(name).listContainers({ filters: { label: ['io.yardmaster.managed=true'] } })
    expect(ours.filter((c) => c.State === 'running').map((c) => c.Names)).toEqual([])

    const cordoned = await t.ok<NodeLiveView>('node.admin', {
      node: name,
      action: 'cordon',
      reason: 'new disk',
    })
    expect(cordoned).toMatchObject({ admin: 'cordoned', adminReason: 'new disk', canTakeNewJobs: false })
    expect(cordoned.description).toBe('online, cordoned: new disk')
    // Announced at once, not at the next probe.
    await new Promise((r) => setTimeout(r, 0))
    expect(t.changes(name).at(-1)).toMatchObject({ admin: 'cordoned' })

    expect(await t.failed('node.admin', { node: name, action: 'cordon' })).toEqual({
      name: 'AdminRefusedError',
      message: `cannot cordon ${name}: the node is already cordoned`,
    })

    expect(await t.ok<NodeLiveView>('node.admin', { node: name, action: 'drain' })).toMatchObject({
      admin: 'draining',
      adminReason: null,
    })
    // No job of ours: drained at its next probe, so cordoned.
    await t.until(name, (n) => n.admin === 'cordoned', 15_000)
    expect(await t.ok<NodeLiveView>('node.admin', { node: name, action: 'resume' })).toMatchObject({
      admin: 'active',
      canTakeNewJobs: true,
    })
    // An illegal move: resume an active node.
    expect(await t.failed('node.admin', { node: name, action: 'resume' })).toEqual({
      name: 'AdminRefusedError',
      message: `cannot resume ${name}: the node is active already: there is nothing to resume`,
    })
    const events = await t.ok<NodeEventRecord[]>('node.events', { node: name })
    const admin = events.filter((e) => e.kind === 'admin').map((e) => `${e.from}->${e.to}:${e.reason ?? ''}`)
    // Newest first. (A probe under way when the drain came dates "drained" from its start: those two may swap.)
    expect(admin[0]).toBe('cordoned->active:')
    expect(admin.at(-1)).toBe('active->cordoned:new disk')
    expect(admin.slice(1, 3).sort()).toEqual(['cordoned->draining:', 'draining->cordoned:drained'])
    expect(admin).toHaveLength(4)
    expect((await t.ok<NodeEventRecord[]>('node.events', { limit: 50 })).map((e) => e.node)).toEqual(
      expect.arrayContaining(NODES),
    )
  })

  it('node.containers, node.images, node.test, farm.probe, node.copyImage, node.prune on the lab', async () => {
    const engine = hostEngine('n1')
    const c = await engine.createContainer({
      Image: 'lab/busybox:1',
      Cmd: ['true'],
      Labels: { 'io.yardmaster.managed': 'true', 'io.yardmaster.run': '77', 'io.yardmaster.job': 'api-test' },
    })
    try {
      const containers = await t.ok<ContainerView[]>('node.containers', { node: 'n1' })
      expect(containers.find((x) => c.id.startsWith(x.id))).toMatchObject({
        managed: true,
        runId: '77',
        jobKey: 'api-test',
        state: 'created',
      })
    } finally {
      await c.remove({ force: true })
    }
    const images = await t.ok<ImageView[]>('node.images', { node: 'n1' })
    expect(images.flatMap((i) => i.tags)).toEqual(
      expect.arrayContaining(['lab/busybox:1', 'lab/debian:bookworm']),
    )

    const test = await t.ok<ConnectionTestView>('node.test', { node: 'n3' })
    expect(test).toMatchObject({ node: 'n3', samples: 5 })
    expect(test.handshakeMs).toBeGreaterThan(0)
    expect(test.engineVersion).toMatch(/^20\.10\./)

    const probed = await t.ok<NodeStatusView[]>('farm.probe', { node: 'n2' })
    expect(probed.map((p) => [p.name, p.reachable])).toEqual([['n2', true]])
    expect(probed[0]!.capabilities.labels).toEqual(expect.arrayContaining(['gpu', 'docker', 'farm.node=n2']))

    // An image of our own (busybox under another name), so the lab's images stay as they are.
    const image = 'lab/api-copy:1'
    await engine.getImage('lab/busybox:1').tag({ repo: 'lab/api-copy', tag: '1' })
    await removeImage('n2', image)
    try {
      const copied = await t.ok<ImageCopyView>('node.copyImage', { node: 'n2', image, from: 'n1' })
      expect(copied).toMatchObject({ outcome: 'copied', from: 'n1', to: 'n2', replacedImageId: null })
      expect(copied.bytes).toBeGreaterThan(1_000_000)
      expect((await hostEngine('n2').getImage(image).inspect()).Id).toBe(copied.imageId)
      expect(await t.ok<ImageCopyView>('node.copyImage', { node: 'n2', image, from: 'n1' })).toMatchObject({
        outcome: 'present',
        bytes: 0,
      })
    } finally {
      await removeImage('n2', image)
      await removeImage('n1', image)
    }
    expect(await t.failed('node.copyImage', { node: 'n2', image: 'lab/absent:1', from: 'n1' })).toMatchObject(
      {
        name: 'ImageNotOnSourceError',
        message: expect.stringContaining('image lab/absent:1 is not on n1') as string,
      },
    )
    expect(
      await t.failed('node.copyImage', { node: 'n2', image: 'lab/busybox:1', from: 'n2' }),
    ).toMatchObject({
      name: 'CopySourceError',
    })
    expect(await t.failed('node.copyImage', { node: 'n2', image: 'lab/busybox:1', from: 'n9' })).toEqual({
      name: 'CopySourceError',
      message:
        'there is no node "n9" to copy from; did you mean "n1"? Use a node of the farm (n1, n2, n3) or local for this machine\'s engine.',
    })

    // A stopped container of ours is removed; one of someone else's is left alone.
    const ours = await engine.createContainer({
      Image: 'lab/busybox:1',
      Cmd: ['true'],
      Labels: { 'io.yardmaster.managed': 'true' },
    })
    const theirs = await engine.createContainer({ Image: 'lab/busybox:1', Cmd: ['true'] })
    try {
      await ours.start()
      await ours.wait()
      const report = await t.ok<PruneReport>('node.prune', { node: 'n1' })
      expect(report.containers.map((x) => x.id)).toContain(ours.id.slice(0, 12))
      await expect(theirs.inspect()).resolves.toBeTruthy()
    } finally {
      await ours.remove({ force: true }).catch(() => {})
      await theirs.remove({ force: true })
    }
  })

  it('node.hostKey: lab hosts are trusted; node.trust with another fingerprint is refused; unknown nodes named', async () => {
    for (const name of NODES)
      expect(await t.ok<HostKeyView>('node.hostKey', { node: name })).toEqual({
        node: name,
        keyType: 'ssh-ed25519',
        fingerprint: fingerprintOf(name),
        verdict: 'trusted',
        file: lab().knownHosts,
        line: expect.any(Number) as number,
        knownFingerprint: null,
        recorded: false,
      })
    const wrong = fingerprintOf('n2')
    expect(await t.failed('node.trust', { node: 'n1', fingerprint: wrong })).toEqual({
      name: 'FingerprintMismatchError',
      message:
        `node n1 (yardlab@127.0.0.11:2222) now offers the ssh-ed25519 key ${fingerprintOf('n1')}, not ${wrong}, ` +
        "the one that was shown: nothing was recorded. Look at the key it offers again and check that one with the machine's owner.",
    })
    // Already trusted: nothing to record.
    expect(
      await t.ok<HostKeyView>('node.trust', { node: 'n1', fingerprint: fingerprintOf('n1') }),
    ).toMatchObject({
      verdict: 'trusted',
      recorded: false,
    })
    expect(await t.failed('node.containers', { node: 'n4' })).toEqual({
      name: 'UnknownNodeError',
      message: `there is no node "n4" in ${lab().farmFile}; did you mean "n1"? Nodes: n1, n2, n3`,
    })
  })

  it('farm.editNode writes the farm file back and announces farm.changed; the nodes stay online', async () => {
    const dir = tempDir('ym-edit-')
    const file = join(dir, 'farm.yml')
    writeFileSync(file, readFileSync(lab().farmFile, 'utf8'))
    const e = start(file)
    try {
      await e.until('n3', (n) => n.health === 'online', 15_000)
      const edited = await e.ok<NodeLiveView>('farm.editNode', {
        node: 'n3',
        edit: { labels: ['linux', 'arm64', 'big'], slots: 2 },
      })
      expect(edited).toMatchObject({ name: 'n3', slots: 2, health: 'online' })
      expect(edited.labels).toEqual(expect.arrayContaining(['big', 'arm64']))
      expect(e.events.filter((x) => x.event === 'farm.changed')).toEqual([
        { event: 'farm.changed', payload: { file } },
      ])
      const text = readFileSync(file, 'utf8')
      expect(text).toContain('# Yardmaster farm file for the local test lab')
      expect(text).toMatch(/labels: \[linux, arm64, big\]\n {4}slots: 2\n/)
      expect(loadFarmFile(file).nodes[2]).toMatchObject({ slots: 2 })
      expect((await e.ok<NodeLiveView[]>('farm.nodes')).find((n) => n.name === 'n3')).toMatchObject({
        slots: 2,
      })

      // Edited elsewhere (an editor): the next edit is refused until the farm is read again.
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace(/(arm64, big\]\n {4}slots: )2/, (_, key: string) => `${key}3`),
      )
      expect(await e.failed('farm.editNode', { node: 'n3', edit: { slots: 1 } })).toMatchObject({
        message: expect.stringContaining('changed on disk since it was loaded'),
      })
      const reloaded = await e.ok<NodeLiveView[]>('farm.reload')
      expect(reloaded.find((n) => n.name === 'n3')).toMatchObject({ slots: 3, health: 'online' })
      expect(await e.ok<NodeLiveView>('farm.editNode', { node: 'n3', edit: { slots: 1 } })).toMatchObject({
        slots: 1,
      })
      // A file broken meanwhile is refused with where it is broken; the farm stays as it was.
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace(/(arm64, big\]\n {4}slots: )1/, (_, key: string) => `${key}[`),
      )
      expect((await e.failed('farm.reload', {})).message).toMatch(new RegExp(`${file}:\\d+:\\d+`))
      expect((await e.ok<NodeLiveView[]>('farm.nodes')).find((n) => n.name === 'n3')).toMatchObject({
        slots: 1,
      })
    } finally {
      await e.app.close()
    }
  })
})

describe('trust on first use through the API', () => {
  it('an unknown host is unreachable until trusted with the fingerprint shown; a changed key is refused', async () => {
    const dir = tempDir('ym-api-tofu-')
    // The lab's farm with a known_hosts that knows only a wrong key for n2 (n1's): n1 and n3 are
    // unknown, n2 has a changed key.
    const kh = join(dir, 'known_hosts')
    const n1Key = readFileSync(host('n1').hostKeyPub, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
    writeFileSync(kh, `[127.0.0.12]:2222 ${n1Key}\n`)
    const file = join(dir, 'farm.yml')
    writeFileSync(
      file,
      readFileSync(lab().farmFile, 'utf8').replace(/^knownHosts: .*$/m, `knownHosts: ${kh}`),
    )
    // The monitor's own round comes only every 10 minutes here: n1 can come online within the
    // test only through the probe that trusting a key asks for at once.
    const t = start(file, { monitor: { intervalMs: 10 * 60_000 } })
    const store = join(t.app.backend.ctx.dataDir, 'known_hosts')
    try {
      const refused = await t.until('n1', (n) => n.health === 'unreachable', 15_000)
      expect(refused.unreachableCause).toBe('host-key')
      expect(refused.healthReasons[0]).toContain(
        `is not a known host: it offered the ssh-ed25519 key ${fingerprintOf('n1')}`,
      )

      const shown = await t.ok<HostKeyView>('node.hostKey', { node: 'n1' })
      expect(shown).toEqual({
        node: 'n1',
        keyType: 'ssh-ed25519',
        fingerprint: fingerprintOf('n1'),
        verdict: 'unknown',
        file: store,
        line: null,
        knownFingerprint: null,
        recorded: false,
      })
      // A wrong fingerprint records nothing.
      expect((await t.failed('node.trust', { node: 'n1', fingerprint: fingerprintOf('n3') })).name).toBe(
        'FingerprintMismatchError',
      )
      expect(() => readFileSync(store)).toThrow(/ENOENT/)

      const trusted = await t.ok<HostKeyView>('node.trust', { node: 'n1', fingerprint: shown.fingerprint })
      expect(trusted).toMatchObject({ verdict: 'unknown', recorded: true, file: store })
      expect(readFileSync(store, 'utf8')).toBe(`[127.0.0.11]:2222 ${n1Key}\n`)
      const t0 = Date.now()
      await t.until('n1', (n) => n.health === 'online' && n.sample !== null, 60_000)
      console.log(`n1 online ${Date.now() - t0} ms after it was trusted`)
      expect(await t.ok<HostKeyView>('node.hostKey', { node: 'n1' })).toMatchObject({
        verdict: 'trusted',
        file: store,
        line: 1,
      })

      // n2's key differs from the one on record: shown as changed, never trusted, record kept.
      const changed = await t.ok<HostKeyView>('node.hostKey', { node: 'n2' })
      expect(changed).toMatchObject({
        verdict: 'changed',
        file: kh,
        line: 1,
        fingerprint: fingerprintOf('n2'),
        knownFingerprint: fingerprintOf('n1'),
      })
      const refusal = await t.failed('node.trust', { node: 'n2', fingerprint: fingerprintOf('n2') })
      expect(refusal.name).toBe('ChangedHostKeyError')
      expect(refusal.message).toContain(
        `the host key of node n2 (yardlab@127.0.0.12:2222) has CHANGED: it now offers the ssh-ed25519 key ${fingerprintOf('n2')}, ` +
          `but ${kh}:1 holds ${fingerprintOf('n1')} for [127.0.0.12]:2222.`,
      )
      expect(readFileSync(kh, 'utf8')).toBe(`[127.0.0.12]:2222 ${n1Key}\n`)
      expect(readFileSync(store, 'utf8')).toBe(`[127.0.0.11]:2222 ${n1Key}\n`)
      expect((await t.ok<NodeLiveView[]>('farm.nodes')).map((n) => [n.name, n.health])).toEqual([
        ['n1', 'online'],
        ['n2', 'unreachable'],
        ['n3', 'unreachable'],
      ])
    } finally {
      await t.app.close()
    }
  })
})

describe('the node API through yardmaster serve', () => {
  it('answers farm.nodes over the WebSocket and sends node.changed as the monitor probes', async () => {
    // A farm whose known_hosts knows nobody: serve --accept-new-host-keys records the keys in its data dir.
    const dir = tempDir('ym-serve-api-')
    const kh = join(dir, 'empty_known_hosts')
    writeFileSync(kh, '')
    const farm = join(dir, 'farm.yml')
    writeFileSync(
      farm,
      readFileSync(lab().farmFile, 'utf8').replace(/^knownHosts: .*$/m, `knownHosts: ${kh}`),
    )
    const dataDir = join(dir, 'data')
    const served = await serve(['--data-dir', dataDir, '--farm', farm, '--accept-new-host-keys'])
    try {
      const api = await apiSocket(served)
      try {
        const env = (await api.call('farm.nodes')) as Envelope<NodeLiveView[]>
        expect(env.ok).toBe(true)
        if (!env.ok) return
        expect(env.result.map((n) => n.name)).toEqual(NODES)
        const online = await api.event(
          'node.changed',
          (n: ApiEvents['node.changed']) => n.health === 'online' && n.sample !== null,
          15_000,
        )
        expect(NODES).toContain(online.name)
        expect(online.address).toMatch(/^yardlab@127\.0\.0\.1\d:2222$/)
        const recorded = readFileSync(join(dataDir, 'known_hosts'), 'utf8')
        expect(recorded).toContain(`[${host(online.name).address}]:2222 ssh-ed25519 `)
        const unknown = await api.call('node.images', { node: 'n4' })
        expect(unknown).toMatchObject({ ok: false, error: { name: 'UnknownNodeError' } })
      } finally {
        api.close()
      }
    } finally {
      // SIGTERM: the monitor stops and the connections close, and serve exits by itself; one
      // that hung would never resolve this, and the test would time out.
      await served.stop()
    }
  })
})
