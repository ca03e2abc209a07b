import { describe, expect, it } from 'vitest'
import { countsLine } from './wait-counts'

describe('countsLine', () => {
  it('lists nodes by why, most first (ties by name), and nothing for no counts', () => {
    expect(countsLine({ busy: 2, 'refuses work': 1, 'lacks label gpu': 3, zero: 0 })).toBe(
      'lacks label gpu: 3 · busy: 2 · refuses work: 1',
    )
    expect(countsLine({ b: 1, a: 1 })).toBe('a: 1 · b: 1')
    expect(countsLine({})).toBe('')
  })
})
