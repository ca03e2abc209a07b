import { describe, expect, it } from 'vitest'
import type { AdminKind } from '../../../shared/model'
import { liveNode, sample } from './node-fixtures'
import {
  adminActions,
  draftFrom,
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
