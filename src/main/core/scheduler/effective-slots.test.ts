import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { effectiveSlots } from './effective-slots'

const n2 = { name: 'n2', slots: 4 }
const limits = { loadPerCore: 1.5, memoryUsedPct: 90 }
const sample = (load1: number, memUsedPct: number | null = 50, cpus = 4) => ({ load1, cpus, memUsedPct })

describe('effectiveSlots', () => {
  it('keeps every slot while the node is calm, or unmeasured', () => {
    expect(effectiveSlots(n2, sample(2), limits, null)).toEqual({ slots: 4, note: null })
    expect(effectiveSlots(n2, null, limits, 2)).toEqual({ slots: 4, note: null })
  })

  it('shrinks with the load past the limit, never below one, and says so', () => {
    expect(effectiveSlots(n2, sample(7.9), limits, null)).toEqual({
      slots: 3,
      note: 'n2: 3 of 4 slots while load is 7.9 on 4 cores',
    })
    expect(effectiveSlots(n2, sample(12), limits, null).slots).toBe(2)
    expect(effectiveSlots(n2, sample(400), limits, null).slots).toBe(1)
    expect(effectiveSlots(n2, sample(1, 95), limits, null)).toEqual({
      slots: 3,
      note: 'n2: 3 of 4 slots while memory is 95% used',
    })
  })

  it('grows back only below 80% of the limit: no flapping in between', () => {
    // Load 5.6 on 4 cores is 1.4 per core: under the limit (1.5), over 80% of it (1.2): hold.
    expect(effectiveSlots(n2, sample(5.6), limits, 2)).toEqual({
      slots: 2,
      note: 'n2: 2 of 4 slots while load is 5.6 on 4 cores',
    })
    expect(effectiveSlots(n2, sample(4.4), limits, 2)).toEqual({ slots: 4, note: null })
  })

  it('never gives more than declared nor fewer than one, and is steady for a steady sample', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: null }),
        fc.option(fc.integer({ min: 1, max: 16 }), { nil: null }),
        (slots, load1, mem, prev) => {
          const node = { name: 'n', slots }
          const s = { load1, cpus: 4, memUsedPct: mem }
          const first = effectiveSlots(node, s, limits, prev === null ? null : Math.min(prev, slots))
          expect(first.slots).toBeGreaterThanOrEqual(1)
          expect(first.slots).toBeLessThanOrEqual(slots)
          expect(effectiveSlots(node, s, limits, first.slots).slots).toBe(first.slots)
        },
      ),
    )
  })
})
