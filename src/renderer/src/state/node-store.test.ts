/** The Nodes view's state against a fake backend: snapshot, then events; no polling. */
import { describe, expect, it } from 'vitest'
import type { NodeEventRecord, NodeLiveView, NodeStatusView, Series } from '../../../shared/model'
import { fakeApi, settle } from './fake-api'
import { liveNode, sample } from './node-fixtures'
import { pointFromSample } from './node-logic'
import { createNodeStore } from './node-store'

const NOW = 10_000_000

function farm(nodes: NodeLiveView[], events: NodeEventRecord[] = []) {
  const series: Series = { resolution: 'sample', points: [pointFromSample(sample(NOW - 60_000))] }
  return fakeApi({
    'farm.nodes': () => nodes,
    'node.series': () => series,
    'node.events': ({ node }) => events.filter((e) => e.node === node),
    'node.admin': ({ node, action, reason }) =>
      liveNode(node, {
        admin: action === 'drain' ? 'draining' : action === 'cordon' ? 'cordoned' : 'active',
        adminSince: NOW,
        adminReason: reason ?? null,
      }),
    'farm.editNode': ({ node, edit }) => liveNode(node, { slots: edit.slots ?? 2 }),
    'farm.reload': () => [liveNode('n1', { slots: 8 })],
    'farm.probe': ({ node }) => (node === 'gone' ? [] : [probed(node ?? 'n1')]),
    'node.copyImage': ({ node, image, from }) => ({
      image,
      from,
      to: node,
      outcome: 'copied',
      bytes: 10,
      ms: 5,
      imageId: 'sha256:1',
      replacedImageId: null,
    }),
  })
}

function probed(name: string): NodeStatusView {
  const n = liveNode(name)
  return {
    name,
    host: n.host,
    address: n.address,
    executor: n.executor,
    labels: n.labels,
    slots: n.slots,
    reachable: false,
    unreachableReason: 'connection refused',
    facts: null,
    capabilities: {
      labels: n.labels,
      declared: n.labels,
      automatic: ['self-hosted', 'docker'],
      engineLabels: [],
      os: null,
      arch: null,
      cpus: null,
      memoryBytes: null,
      diskFreeBytes: null,
      gpu: false,
      tools: null,
      notes: [],
    },
  }
}

async function started(fake: ReturnType<typeof farm>, reconnect?: (l: () => void) => () => void) {
  const store = createNodeStore(fake.api, reconnect, () => NOW)
  const stop = store.getState().start()
  await settle()
  await settle()
  return { store, stop }
}

describe('node store', () => {
  it('reads the farm file again on demand and shows what it now says', async () => {
    const fake = farm([liveNode('n1'), liveNode('n2')])
    const { store } = await started(fake)
    const nodes = await store.getState().reloadFarm()
    expect(nodes.map((n) => [n.name, n.slots])).toEqual([['n1', 8]])
    expect(store.getState().nodes.map((n) => [n.name, n.slots])).toEqual([['n1', 8]])
    expect(fake.calls).toContain('farm.reload {}')
  })

  it('loads the nodes, their last 15 minutes, selects the first and loads its events', async () => {
    const ev: NodeEventRecord = {
      node: 'n1',
      at: 5,
      kind: 'health',
      from: 'offline',
      to: 'online',
      reason: null,
    }
    const fake = farm([liveNode('n1'), liveNode('n2')], [ev])
    const { store } = await started(fake)
    const s = store.getState()
    expect(s.nodes.map((n) => n.name)).toEqual(['n1', 'n2'])
    expect(s.selected).toBe('n1')
    expect(s.events).toEqual([ev])
    expect(Object.keys(s.series).sort()).toEqual(['n1', 'n2'])
    expect(fake.calls).toContain(`node.series {"node":"n1","from":${NOW - 15 * 60_000}}`)
  })

  it('applies node.changed to that node only, and extends its chart', async () => {
    const fake = farm([liveNode('n1'), liveNode('n2'), liveNode('n3')])
    const { store } = await started(fake)
    const [n1, n2] = store.getState().nodes
    const changed = liveNode('n2', {
      health: 'degraded',
      healthReasons: ['low disk on /'],
      sample: sample(NOW),
    })
    fake.emit('node.changed', changed)
    const s = store.getState()
    expect(s.nodes[1]).toBe(changed)
    expect(s.nodes[0]).toBe(n1)
    expect(s.nodes[1]).not.toBe(n2)
    expect(s.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3'])
    expect(s.series.n2!.map((p) => p.at)).toEqual([NOW - 60_000, NOW])
    expect(s.series.n1!.map((p) => p.at)).toEqual([NOW - 60_000])
  })

  it('reloads the selected node’s events when its state moves, not for every sample', async () => {
    const fake = farm([liveNode('n1'), liveNode('n2')])
    const { store } = await started(fake)
    expect(store.getState().selected).toBe('n1')
    const eventCalls = () => fake.calls.filter((c) => c.startsWith('node.events')).length
    const before = eventCalls()
    fake.emit('node.changed', liveNode('n1', { sample: sample(NOW) }))
    fake.emit('node.changed', liveNode('n2', { health: 'unreachable', healthSince: NOW }))
    await settle()
    expect(eventCalls()).toBe(before)
    fake.emit('node.changed', liveNode('n1', { health: 'unreachable', healthSince: NOW }))
    await settle()
    expect(eventCalls()).toBe(before + 1)
    expect(fake.calls.at(-1)).toBe('node.events {"node":"n1","limit":30}')
  })

  it('takes the snapshot again on farm.changed and on reconnect', async () => {
    let nodes = [liveNode('n1')]
    const fake = fakeApiFor(() => nodes)
    let reconnected = () => {}
    const { store } = await started(fake, (l) => {
      reconnected = l
      return () => {}
    })
    nodes = [liveNode('n1', { slots: 8 }), liveNode('n4')]
    fake.emit('farm.changed', { file: '/farm.yml' })
    await settle()
    expect(store.getState().nodes.map((n) => [n.name, n.slots])).toEqual([
      ['n1', 8],
      ['n4', 2],
    ])
    nodes = [liveNode('n4')]
    reconnected()
    await settle()
    expect(store.getState().nodes.map((n) => n.name)).toEqual(['n4'])
    // The selected node left the farm: the first one is selected instead.
    expect(store.getState().selected).toBe('n4')
  })

  it('puts an admin action’s answer in the list, with the reason trimmed (none when blank)', async () => {
    const fake = farm([liveNode('n1'), liveNode('n3')])
    const { store } = await started(fake)
    await store.getState().admin('n3', 'drain', '  disk swap ')
    expect(fake.calls.at(-1)).toBe('node.admin {"node":"n3","action":"drain","reason":"disk swap"}')
    expect(store.getState().nodes[1]!.admin).toBe('draining')
    await store.getState().admin('n3', 'resume', '  ')
    expect(fake.calls.filter((c) => c.startsWith('node.admin')).at(-1)).toBe(
      'node.admin {"node":"n3","action":"resume"}',
    )
    expect(store.getState().nodes[1]!.admin).toBe('active')
  })

  it('probes one node and gives its status; copies an image with the source given', async () => {
    const fake = farm([liveNode('n1'), liveNode('n2')])
    const { store } = await started(fake)
    expect((await store.getState().probe('n2')).name).toBe('n2')
    expect(fake.calls).toContain('farm.probe {"node":"n2"}')
    await expect(store.getState().probe('gone')).rejects.toThrow('the probe did not answer for gone')
    const r = await store.getState().copyImage('n2', 'lab/x:1', 'local')
    expect(r).toMatchObject({ image: 'lab/x:1', from: 'local', to: 'n2', outcome: 'copied' })
    expect(fake.calls).toContain('node.copyImage {"node":"n2","image":"lab/x:1","from":"local"}')
  })

  it('sends an edit as given and shows the node the backend wrote', async () => {
    const fake = farm([liveNode('n1')])
    const { store } = await started(fake)
    await store.getState().edit('n1', { slots: 6 })
    expect(fake.calls.at(-1)).toBe('farm.editNode {"node":"n1","edit":{"slots":6}}')
    expect(store.getState().nodes[0]!.slots).toBe(6)
  })

  it('says why the farm could not be loaded, and unsubscribes when stopped', async () => {
    const fake = fakeApi({
      'farm.nodes': () => {
        throw new Error('unknown method farm.nodes')
      },
    })
    const { store, stop } = await started(fake as ReturnType<typeof farm>)
    expect(store.getState().error).toBe('unknown method farm.nodes')
    expect(store.getState().loaded).toBe(true)
    stop()
    expect(fake.listenerCount()).toBe(0)
  })
})

function fakeApiFor(nodes: () => NodeLiveView[]) {
  return fakeApi({
    'farm.nodes': () => nodes(),
    'node.series': () => ({ resolution: 'sample', points: [] }),
    'node.events': () => [],
  })
}
