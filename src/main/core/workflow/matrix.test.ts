import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Json } from './expressions'
import { expandMatrix, instanceName, MatrixError } from './matrix'

describe('expandMatrix', () => {
  it('is the product of the axes, in axis order', () => {
    expect(expandMatrix({ os: ['a', 'b'], n: [1, 2] })).toEqual([
      { os: 'a', n: 1 },
      { os: 'a', n: 2 },
      { os: 'b', n: 1 },
      { os: 'b', n: 2 },
    ])
  })

  it('removes partial matches of exclude', () => {
    expect(expandMatrix({ os: ['a', 'b'], n: [1, 2], exclude: [{ os: 'b' }] })).toEqual([
      { os: 'a', n: 1 },
      { os: 'a', n: 2 },
    ])
  })

  it('merges include into fitting combinations, or adds it (GitHub’s documented example)', () => {
    const m: Record<string, Json> = {
      fruit: ['apple', 'pear'],
      animal: ['cat', 'dog'],
      include: [
        { color: 'green' },
        { color: 'pink', animal: 'cat' },
        { fruit: 'apple', shape: 'circle' },
        { fruit: 'banana' },
        { fruit: 'banana', animal: 'cat' },
      ],
    }
    expect(expandMatrix(m)).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ])
  })

  it('takes include alone, and objects as values', () => {
    expect(expandMatrix({ include: [{ a: 1 }, { a: { deep: true } }] })).toEqual([
      { a: 1 },
      { a: { deep: true } },
    ])
  })

  it('refuses what GitHub refuses, saying why', () => {
    expect(() => expandMatrix(['a'])).toThrow(MatrixError)
    expect(() => expandMatrix({ os: 'linux' })).toThrow('matrix axis "os" must be a list of values')
    expect(() => expandMatrix({ os: [] })).toThrow('matrix axis "os" has no values')
    expect(() => expandMatrix({ os: ['a'], include: 'x' })).toThrow(
      'matrix "include" must be a list of mappings',
    )
    expect(() =>
      expandMatrix({
        a: Array.from({ length: 17 }, (_, i) => i),
        b: Array.from({ length: 16 }, (_, i) => i),
      }),
    ).toThrow('the matrix makes 272 jobs; at most 256 are allowed')
  })

  it('names instances after their values', () => {
    expect(instanceName('build', { os: 'linux', node: 20 })).toBe('build (linux, 20)')
    expect(instanceName('build', { cfg: { a: 1 } })).toBe('build ({"a":1})')
    expect(instanceName('build', {})).toBe('build')
  })

  const axes = fc.dictionary(
    fc
      .string({ minLength: 1, maxLength: 4 })
      .filter((k) => k !== 'include' && k !== 'exclude' && k !== '__proto__'),
    fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('x', 'y', 'z')), {
      minLength: 1,
      maxLength: 3,
    }),
    { minKeys: 1, maxKeys: 3 },
  )

  it('property: without include/exclude, the count is the product and every combination is distinct', () => {
    fc.assert(
      fc.property(axes, (m) => {
        const combos = expandMatrix(m as Record<string, Json>)
        const product = Object.values(m).reduce((n, v) => n * v.length, 1)
        expect(combos).toHaveLength(product)
        expect(new Set(combos.map((c) => JSON.stringify(c))).size).toBe(product)
        for (const c of combos) expect(Object.keys(c)).toEqual(Object.keys(m))
      }),
    )
  })

  it('property: exclude removes exactly the matching combinations', () => {
    fc.assert(
      fc.property(axes, fc.nat(), (m, pick) => {
        const all = expandMatrix(m as Record<string, Json>)
        const victim = all[pick % all.length]!
        const kept = expandMatrix({ ...(m as Record<string, Json>), exclude: [victim] })
        expect(kept).toHaveLength(all.length - 1)
        expect(kept.some((c) => JSON.stringify(c) === JSON.stringify(victim))).toBe(false)
      }),
    )
  })

  it('property: an include with only new keys lands in every combination and adds none', () => {
    fc.assert(
      fc.property(axes, (m) => {
        const combos = expandMatrix({ ...(m as Record<string, Json>), include: [{ zz_extra: 'v' }] })
        expect(combos).toHaveLength(Object.values(m).reduce((n, v) => n * v.length, 1))
        expect(combos.every((c) => c.zz_extra === 'v')).toBe(true)
      }),
    )
  })
})
