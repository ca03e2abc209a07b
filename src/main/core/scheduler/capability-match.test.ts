import { describe, expect, it } from 'vitest'
import type { FarmNode } from '../farm/farm-model'
import {
  explainRequirements,
  nodesFor,
  pickNode,
  requirementsOf,
  whoCanTake,
  whyNot,
} from './capability-match'
import { farmNode } from '../../../../test/support/farm-node'

const node = (name: string, labels: string[], slots = 1): FarmNode =>
  farmNode(name, { labels: ['self-hosted', ...labels], slots })

const n1 = node('n1', ['linux', 'x64'], 2)
const n2 = node('n2', ['linux', 'x64', 'gpu'], 1)
const n3 = node('n3', ['linux', 'arm64'], 4)
const farm = [n1, n2, n3]

/** Nodes that carry every label of `runsOn` (and nothing else asked). */
const candidates = (runsOn: string[], nodes: FarmNode[]) => nodesFor(requirementsOf(runsOn, {}), nodes)

describe('nodesFor: labels', () => {
  it('keeps nodes that carry every label, in farm order', () => {
    expect(candidates(['linux'], farm)).toEqual([n1, n2, n3])
    expect(candidates(['linux', 'x64'], farm)).toEqual([n1, n2])
    expect(candidates(['gpu', 'x64'], farm)).toEqual([n2])
  })

  it('matches labels case-insensitively', () => {
    expect(candidates(['Linux', 'ARM64'], farm)).toEqual([n3])
    expect(candidates(['Self-Hosted'], farm)).toEqual(farm)
  })

  it('finds nothing when no node carries all labels', () => {
    expect(candidates(['gpu', 'arm64'], farm)).toEqual([])
    expect(candidates(['windows'], [])).toEqual([])
  })
})

describe('pickNode', () => {
  it('picks the candidate with the most free slots', () => {
    expect(pickNode(farm, new Map())).toBe(n3)
    expect(pickNode(farm, new Map([['n3', 3]]))).toBe(n1)
  })

  it('breaks ties by farm order', () => {
    const a = node('a', [], 2)
    const b = node('b', [], 2)
    expect(pickNode([a, b], new Map())).toBe(a)
    expect(pickNode([b, a], new Map())).toBe(b)
    expect(pickNode([a, b], new Map([['a', 1]]))).toBe(b)
  })

  it('returns null when every candidate is full, or there are none', () => {
    expect(
      pickNode(
        farm,
        new Map([
          ['n1', 2],
          ['n2', 1],
          ['n3', 4],
        ]),
      ),
    ).toBeNull()
    expect(pickNode([n2], new Map([['n2', 5]]))).toBeNull()
    expect(pickNode([], new Map())).toBeNull()
  })

  it('ignores busy counts of nodes that are not candidates', () => {
    expect(pickNode([n2], new Map([['n1', 2]]))).toBe(n2)
  })
})

describe('whoCanTake', () => {
  const m = (name: string, labels: string[], unreachable: string | null = null) => ({
    name,
    labels,
    unreachable,
  })
  const farmCaps = [
    m('n1', ['self-hosted', 'linux', 'x64', 'docker', 'role=general']),
    m('n2', ['self-hosted', 'linux', 'x64', 'docker', 'gpu']),
    m('n3', ['self-hosted', 'linux', 'arm64'], 'connection refused'),
  ]

  it('says can for every node that carries all labels and is reachable', () => {
    expect(whoCanTake(['linux', 'x64'], farmCaps)).toEqual([
      { node: 'n1', can: true },
      { node: 'n2', can: true },
      { node: 'n3', can: false, reasons: ['lacks label x64', 'unreachable: connection refused'] },
    ])
  })

  it('lists every missing label, once, in the order asked, case-insensitively', () => {
    expect(whoCanTake(['GPU', 'arm64', 'gpu'], farmCaps.slice(0, 2))).toEqual([
      { node: 'n1', can: false, reasons: ['lacks label gpu', 'lacks label arm64'] },
      { node: 'n2', can: false, reasons: ['lacks label arm64'] },
    ])
  })

  it('matches engine labels as key=value', () => {
    expect(whoCanTake(['role=general'], farmCaps.slice(0, 2)).map((v) => v.can)).toEqual([true, false])
  })

  it('refuses an unreachable node even when its labels fit', () => {
    expect(whoCanTake(['arm64'], farmCaps)[2]).toEqual({
      node: 'n3',
      can: false,
      reasons: ['unreachable: connection refused'],
    })
  })

  it('lets any reachable node take a job with no labels, and keeps farm order', () => {
    expect(whoCanTake([], farmCaps).map((v) => [v.node, v.can])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', false],
    ])
    expect(whoCanTake(['linux'], [])).toEqual([])
  })

  it('agrees with candidates on reachable nodes', () => {
    for (const runsOn of [['linux'], ['gpu', 'x64'], ['arm64'], ['Self-Hosted'], ['windows']]) {
      const can = whoCanTake(
        runsOn,
        farm.map((n) => ({ name: n.name, labels: n.labels, unreachable: null })),
      )
        .filter((v) => v.can)
        .map((v) => v.node)
      expect(can).toEqual(candidates(runsOn, farm).map((n) => n.name))
    }
  })
})

describe('platforms (ubuntu-latest=IMAGE)', () => {
  const platforms = {
    'ubuntu-latest': { image: 'debian:bookworm', labels: ['x64'] },
    plain: { image: 'busybox', labels: [] },
  }
  const docker = (name: string, labels: string[]) => ({ ...node(name, labels), executor: 'docker' as const })
  const shell = (name: string, labels: string[]) => ({ ...node(name, labels), executor: 'shell' as const })

  it('turns platform labels into their image and the labels they need, case-insensitively', () => {
    const resources = { cpus: null, memoryBytes: null, gpus: null }
    expect(requirementsOf(['Ubuntu-Latest', 'gpu'], platforms)).toEqual({
      labels: ['x64', 'gpu'],
      resources,
      image: 'debian:bookworm',
      docker: true,
      hostPaths: [],
    })
    expect(requirementsOf(['plain'], platforms)).toEqual({
      labels: [],
      resources,
      image: 'busybox',
      docker: true,
      hostPaths: [],
    })
    expect(requirementsOf(['linux'], platforms)).toEqual({
      labels: ['linux'],
      resources,
      image: null,
      docker: false,
      hostPaths: [],
    })
  })

  it('only docker nodes serve a platform, and the explanation says so', () => {
    const nodes = [shell('mac', ['x64']), docker('d1', ['x64']), docker('d2', ['arm64'])]
    const req = requirementsOf(['ubuntu-latest'], platforms)
    expect(nodesFor(req, nodes).map((n) => n.name)).toEqual(['d1'])
    expect(explainRequirements(req, [nodes[0]!, nodes[2]!])).toBe(
      'no node can take [x64] with docker: mac [self-hosted, x64] runs no containers (the platform image debian:bookworm needs docker); d2 [self-hosted, arm64] lacks label x64',
    )
  })
})

describe('fitting container resources', () => {
  const sized = (name: string, cpus: number | null, memoryBytes: number | null, labels: string[] = []) => ({
    ...node(name, labels),
    cpus,
    memoryBytes,
  })
  it('keeps nodes whose declared capacity fits, and unknown capacity fits', () => {
    const nodes = [
      sized('small', 2, 4 * 1024 ** 3),
      sized('big', 16, 64 * 1024 ** 3),
      sized('unknown', null, null),
    ]
    const req = requirementsOf([], {}, { cpus: 4, memoryBytes: 8 * 1024 ** 3, gpus: null })
    expect(nodesFor(req, nodes).map((n) => n.name)).toEqual(['big', 'unknown'])
    expect(explainRequirements(req, [nodes[0]!])).toBe(
      'no node can take []: small [self-hosted] has 2 cpus, the job asks for 4, has 4g memory, the job asks for 8g',
    )
  })
  it('sends jobs that ask for GPUs to nodes labelled gpu', () => {
    const req = requirementsOf(['linux'], {}, { cpus: null, memoryBytes: null, gpus: 1 })
    expect(req.labels).toEqual(['linux', 'gpu'])
  })
})

describe('bind mounts in the verdict', () => {
  it('keeps a job that binds a host path off docker nodes that do not allow it, saying so', () => {
    const req = requirementsOf(['linux'], {}, undefined, ['/srv/cache'])
    const closed = farmNode('closed', { labels: ['linux'] })
    const open = farmNode('open', { labels: ['linux'], allowedHostPaths: ['/srv/cache'] })
    expect(whyNot(req, closed)).toEqual(['does not allow bind mounts of /srv/cache (allowedHostPaths)'])
    expect(whyNot(req, open)).toEqual([])
    expect(nodesFor(req, [closed, open]).map((n) => n.name)).toEqual(['open'])
    // Shell nodes mount nothing: the question does not arise there.
    expect(whyNot(req, farmNode('sh', { labels: ['linux'], executor: 'shell' }))).toEqual([])
  })
})
