import { describe, expect, it } from 'vitest'
import { farmNode } from '../../../../test/support/farm-node'
import { requirementsOf } from './capability-match'
import { forecastStarts } from './forecast-start'
import type { QueuedJob, SchedNode } from './schedule'

const MIN = 60_000
const node = (name: string, labels: string[], slots: number): SchedNode => ({
  node: farmNode(name, { labels: ['self-hosted', 'linux', ...labels], slots }),
  refuses: null,
  slots,
})
const job = (id: string, expectedMs: number | null, labels: string[] = []): QueuedJob => ({
  id,
  pipeline: 'p',
  priority: 'normal',
  readyAt: 0,
  requirements: requirementsOf(['linux', ...labels], {}),
  expectedMs,
})

describe('forecastStarts', () => {
  it('plays the slots forward in the order of service', () => {
    const nodes = [node('n1', [], 1), node('gpu', ['gpu'], 1)]
    const running = [
      { id: 'r1', node: 'n1', pipeline: 'p', priority: 'normal' as const, startedAt: 0, expectedMs: 2 * MIN },
      {
        id: 'r2',
        node: 'gpu',
        pipeline: 'p',
        priority: 'normal' as const,
        startedAt: 0,
        expectedMs: 10 * MIN,
      },
    ]
    const starts = forecastStarts(
      0,
      [job('a', 3 * MIN), job('b', null), job('g', MIN, ['gpu'])],
      nodes,
      running,
    )
    // a takes n1 when r1 ends; b waits for whichever slot frees next (a's end, or the gpu box).
    expect(starts.get('a')).toBe(2 * MIN)
    expect(starts.get('b')).toBe(5 * MIN)
    expect(starts.get('g')).toBe(10 * MIN)
  })

  it('starts a job at once on a free slot, and gives none to a job nothing fits', () => {
    const starts = forecastStarts(7, [job('now', MIN), job('never', MIN, ['arm64'])], [node('n1', [], 2)], [])
    expect(starts.get('now')).toBe(7)
    expect(starts.has('never')).toBe(false)
  })
})
