import { describe, expect, it } from 'vitest'
import type { AdminKind, ImageCopyView, NodeCapabilities } from '../../../shared/model'
import { liveNode, sample } from './node-fixtures'
import {
  adminActions,
  asSentence,
  chosenSource,
  copySources,
  describeCopy,
  draftFrom,
  engineLine,
  hostLine,
  labelGroups,
  osArch,
  extendSeries,
  parseLabels,
  planEdit,
  pointFromSample,
  replaceNode,
  SERIES_SPAN_MS,
  stateMoved,
} from './node-logic'

describe('replaceNode', () => {
  it('replaces the node of that name, in place, and leaves the others as they were', () => {
    const [a, b, c] = [liveNode('a'), liveNode('b'), liveNode('c')]
    const b2 = liveNode('b', { health: 'unreachable' })
    const out = replaceNode([a, b, c], b2)
    expect(out.map((n) => n.name)).toEqual(['a', 'b', 'c'])
    expect(out[1]).toBe(b2)
    expect(out[0]).toBe(a)
    expect(out[2]).toBe(c)
  })

  it('appends a node it did not know, and does not touch the list it was given', () => {
    const list = [liveNode('a')]
    expect(replaceNode(list, liveNode('z')).map((n) => n.name)).toEqual(['a', 'z'])
    expect(list.length).toBe(1)
  })
})

describe('stateMoved', () => {
  it('is true for a change of health or admin state, false for a new sample only', () => {
    const n = liveNode('a')
    expect(stateMoved(n, { ...n, sample: sample(2000) })).toBe(false)
    expect(stateMoved(n, { ...n, health: 'degraded', healthSince: 2000 })).toBe(true)
    expect(stateMoved(n, { ...n, admin: 'draining', adminSince: 2000 })).toBe(true)
    expect(stateMoved(undefined, n)).toBe(true)
  })
})

describe('adminActions', () => {
  const enabled = (admin: AdminKind) =>
    adminActions(admin)
      .filter((r) => r.enabled)
      .map((r) => r.action)

  it('allows what the node state machine allows', () => {
    expect(enabled('active')).toEqual(['drain', 'cordon'])
    expect(enabled('draining')).toEqual(['cordon', 'resume'])
    expect(enabled('cordoned')).toEqual(['drain', 'resume'])
    expect(enabled('quarantined')).toEqual(['drain', 'cordon', 'resume'])
  })

  it('says why a move is refused', () => {
    const resume = adminActions('active').find((r) => r.action === 'resume')!
    expect(resume.why).toMatch(/nothing to resume/)
    expect(adminActions('draining').find((r) => r.action === 'drain')!.why).toMatch(/already draining/)
    expect(adminActions('active').every((r) => r.enabled === (r.why === null))).toBe(true)
  })
})

describe('editing a node', () => {
  const node = liveNode('n1', { labels: ['self-hosted', 'linux', 'general'], slots: 4 })

  it('reads labels from comma-separated text, without blanks, duplicates or self-hosted', () => {
    expect(parseLabels(' linux, GPU ,, gpu, self-hosted, arm64 ')).toEqual(['linux', 'GPU', 'arm64'])
    expect(parseLabels('')).toEqual([])
  })

  it('starts from the declared labels, without self-hosted', () => {
    expect(draftFrom(node)).toEqual({ labels: 'linux, general', slots: '4', defaultImage: '' })
  })

  it('sends nothing when nothing changed (order, case and spaces of labels do not count)', () => {
    expect(planEdit(node, draftFrom(node))).toEqual({ edit: {}, problems: [] })
    expect(planEdit(node, { labels: 'General,LINUX ', slots: ' 4', defaultImage: '' }).edit).toEqual({})
  })

  it('sends only the fields that changed', () => {
    expect(planEdit(node, { ...draftFrom(node), slots: '6' }).edit).toEqual({ slots: 6 })
    expect(planEdit(node, { ...draftFrom(node), labels: 'linux, general, gpu' }).edit).toEqual({
      labels: ['linux', 'general', 'gpu'],
    })
    expect(planEdit(node, { labels: 'linux', slots: '1', defaultImage: '' }).edit).toEqual({
      labels: ['linux'],
      slots: 1,
    })
  })

  it('refuses slots that are not a whole number of at least 1, and sends nothing then', () => {
    for (const slots of ['0', '-1', '2.5', 'two', '']) {
      const plan = planEdit(node, { ...draftFrom(node), slots, labels: 'linux' })
      expect(plan.problems).toEqual(['slots must be a whole number, 1 or more'])
      expect(plan.edit).toEqual({})
    }
  })

  it('sends a default image only when one is typed, while the current one is unknown', () => {
    expect(planEdit(node, { ...draftFrom(node), defaultImage: ' debian:bookworm ' }).edit).toEqual({
      defaultImage: 'debian:bookworm',
    })
    expect(planEdit(node, { ...draftFrom(node), defaultImage: 'two words' }).problems).toHaveLength(1)
  })

  it('compares with the current default image when the backend gives it; emptied removes it', () => {
    const withImage = { ...node, defaultImage: 'lab/debian:bookworm' }
    expect(draftFrom(withImage).defaultImage).toBe('lab/debian:bookworm')
    expect(planEdit(withImage, draftFrom(withImage)).edit).toEqual({})
    expect(planEdit(withImage, { ...draftFrom(withImage), defaultImage: '' }).edit).toEqual({
      defaultImage: null,
    })
    expect(planEdit(withImage, { ...draftFrom(withImage), defaultImage: 'alpine:3' }).edit).toEqual({
      defaultImage: 'alpine:3',
    })
  })
})

describe('extendSeries', () => {
  const now = 100 * 60_000
  it('appends a newer sample and keeps only the last 15 minutes', () => {
    const old = pointFromSample(sample(now - SERIES_SPAN_MS - 1))
    const recent = pointFromSample(sample(now - 5000))
    const out = extendSeries([old, recent], sample(now, { cpuPct: 77 }), now)
    expect(out.map((p) => p.at)).toEqual([now - 5000, now])
    expect(out[1]!.cpuPct).toBe(77)
  })

  it('ignores a sample it already has, and a node without one', () => {
    const points = [pointFromSample(sample(now))]
    expect(extendSeries(points, sample(now), now)).toBe(points)
    expect(extendSeries(points, null, now)).toBe(points)
  })
})

describe('copySources', () => {
  it('offers the other docker nodes in farm order, saying which do not answer, then this machine', () => {
    const nodes = [
      liveNode('n1'),
      liveNode('n2'),
      liveNode('sh', { executor: 'shell' }),
      liveNode('n3', { health: 'unreachable' }),
    ]
    expect(copySources(nodes, nodes[1]!)).toEqual([
      { value: 'n1', label: 'n1', answering: true },
      { value: 'n3', label: 'n3 (unreachable)', answering: false },
      { value: 'local', label: 'this machine (local)', answering: true },
    ])
  })

  it('leaves this machine out when the target is this machine, or a node is called local', () => {
    const here = liveNode('here', { host: 'local' })
    expect(copySources([here, liveNode('n1')], here).map((s) => s.value)).toEqual(['n1'])
    const nodes = [liveNode('n1'), liveNode('local')]
    expect(copySources(nodes, nodes[0]!)).toEqual([{ value: 'local', label: 'local', answering: true }])
    expect(copySources([here], here)).toEqual([])
  })
})

describe('chosenSource', () => {
  const sources = [
    { value: 'n3', label: 'n3 (offline)', answering: false },
    { value: 'n1', label: 'n1', answering: true },
  ]
  it('keeps the choice while it is offered, else takes the first that answers, else the first', () => {
    expect(chosenSource(sources, 'n3')).toBe('n3')
    expect(chosenSource(sources, 'gone')).toBe('n1')
    expect(chosenSource(sources, null)).toBe('n1')
    expect(chosenSource([sources[0]!], null)).toBe('n3')
    expect(chosenSource([], null)).toBeNull()
  })
})

describe('describeCopy', () => {
  const copy = (over: Partial<ImageCopyView> = {}): ImageCopyView => ({
    image: 'lab/busybox:1',
    from: 'n1',
    to: 'n2',
    outcome: 'copied',
    bytes: 1.9 * 2 ** 20,
    ms: 420,
    imageId: 'sha256:a608b6f58f465dd35ef27b9c12b36dd105de1f92acce854f11c6a4f46def1a51',
    replacedImageId: null,
    ...over,
  })

  it('says what was sent, from where, and how long it took', () => {
    expect(describeCopy(copy())).toEqual({
      summary: 'copied lab/busybox:1 from n1: 1.9 MiB in 420 ms',
      replaced: null,
    })
    expect(describeCopy(copy({ from: 'local', bytes: 230 * 2 ** 20, ms: 12_345 })).summary).toBe(
      'copied lab/busybox:1 from this machine: 230 MiB in 12.3 s',
    )
  })

  it('says when nothing was sent because the target had the very image', () => {
    expect(describeCopy(copy({ outcome: 'present', bytes: 0, ms: 0 }))).toEqual({
      summary: 'already present (same image id): nothing sent',
      replaced: null,
    })
  })

  it('names the image the target had under that name, now untagged', () => {
    expect(describeCopy(copy({ replacedImageId: 'sha256:8ebd9320d78b697aad26d7ee' })).replaced).toBe(
      'n2 had another image under that name (8ebd9320d78b); it is now untagged, and Prune removes it if nothing uses it',
    )
  })
})

describe('capabilities in words', () => {
  const caps = (over: Partial<NodeCapabilities> = {}): NodeCapabilities => ({
    labels: ['self-hosted', 'linux', 'arm64', 'docker', 'arch=arm64'],
    declared: ['self-hosted', 'linux', 'arm64'],
    automatic: ['self-hosted', 'linux', 'docker'],
    engineLabels: ['arch=arm64'],
    os: 'linux',
    arch: 'x64',
    cpus: 2,
    memoryBytes: 2 ** 34,
    diskFreeBytes: 2 ** 36,
    gpu: false,
    tools: null,
    notes: [],
    ...over,
  })

  it('splits the labels by where they come from; self-hosted is automatic, not declared', () => {
    expect(labelGroups(caps())).toEqual({
      declared: ['linux', 'arm64'],
      automatic: ['self-hosted', 'linux', 'docker'],
      engine: ['arch=arm64'],
    })
  })

  it('says OS and architecture, with a dash for what the probe could not tell', () => {
    expect(osArch(caps())).toBe('linux / x64')
    expect(osArch(caps({ arch: null }))).toBe('linux / —')
    expect(osArch(caps({ os: null, arch: null }))).toBe('—')
  })

  it('sums up an engine and a shell host in one line', () => {
    expect(
      engineLine({
        serverVersion: '20.10.24+dfsg1',
        osType: 'linux',
        operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
        architecture: 'x86_64',
        cpus: 2,
        memoryBytes: 2 ** 34,
        labels: {},
        runtimes: ['runc', 'nvidia'],
        storageDriver: 'overlay2',
        dataRoot: '/var/lib/docker',
        dataRootFreeBytes: null,
      }),
    ).toBe(
      'Docker 20.10.24+dfsg1 on Debian GNU/Linux 12 (bookworm) · storage overlay2 · runtimes runc, nvidia',
    )
    const host = { kernel: 'Linux', machine: 'aarch64', cpus: 4, memoryBytes: null, rootFreeBytes: null }
    expect(hostLine({ ...host, tools: ['git', 'make'] })).toBe('Linux aarch64 · tools git, make')
    expect(hostLine({ ...host, tools: [] })).toBe('Linux aarch64 · no tools found')
    expect(hostLine({ ...host, kernel: '', machine: '', tools: null })).toBe(
      'unknown system · tools not looked for',
    )
  })
})

describe('asSentence', () => {
  it('ends a message with one full stop, never two', () => {
    expect(asSentence('connection refused')).toBe('connection refused.')
    expect(asSentence('check it (try: ssh -p 2222 ci@x). ')).toBe('check it (try: ssh -p 2222 ci@x).')
    expect(asSentence('is it up?')).toBe('is it up?')
    expect(asSentence('')).toBe('')
  })
})
