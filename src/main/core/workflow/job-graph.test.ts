import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { dependentsOf, findCycle, levels, type GraphJob } from './job-graph'

const g = (spec: Record<string, string[]>): GraphJob[] =>
  Object.entries(spec).map(([key, needs]) => ({ key, needs }))

/** Every consecutive pair of a cycle path is an edge (job -> a job it needs). */
function isRealCycle(jobs: readonly GraphJob[], cycle: string[]): boolean {
  const needs = new Map(jobs.map((j) => [j.key, j.needs]))
  if (cycle.length < 2 || cycle[0] !== cycle[cycle.length - 1]) return false
  return cycle.slice(1).every((next, i) => needs.get(cycle[i]!)?.includes(next) ?? false)
}

describe('findCycle', () => {
  it('finds none in an acyclic graph', () => {
    expect(findCycle(g({ a: [], b: ['a'], c: ['a', 'b'] }))).toBeNull()
    expect(findCycle([])).toBeNull()
  })

  it('returns the cycle as a closed path in need order', () => {
    expect(findCycle(g({ a: ['b'], b: ['c'], c: ['a'] }))).toEqual(['a', 'b', 'c', 'a'])
  })

  it('finds a self-loop', () => {
    expect(findCycle(g({ a: ['a'] }))).toEqual(['a', 'a'])
  })

  it('returns only the cycle, not the path that leads to it', () => {
    expect(findCycle(g({ root: ['x'], x: ['y'], y: ['x'] }))).toEqual(['x', 'y', 'x'])
  })

  it('is stable: jobs are visited in the given order', () => {
    const jobs = g({ p: ['q'], q: ['p'], r: ['s'], s: ['r'] })
    expect(findCycle(jobs)).toEqual(['p', 'q', 'p'])
    expect(findCycle([...jobs].reverse())).toEqual(['s', 'r', 's'])
  })

  it('ignores needs on jobs that do not exist (they are reported elsewhere)', () => {
    expect(findCycle(g({ a: ['ghost'], b: ['a'] }))).toBeNull()
  })
})

describe('levels', () => {
  it('groups jobs by the length of their longest chain of needs, in file order', () => {
    expect(
      levels(g({ build: [], lint: [], test: ['build'], deploy: ['test', 'lint'], docs: ['build'] })),
    ).toEqual([['build', 'lint'], ['test', 'docs'], ['deploy']])
  })

  it('puts a job after the deepest of its needs, not the first', () => {
    expect(levels(g({ d: ['a', 'c'], a: [], b: ['a'], c: ['b'] }))).toEqual([['a'], ['b'], ['c'], ['d']])
  })

  it('throws on a need that is not a job', () => {
    expect(() => levels(g({ a: ['nope'] }))).toThrow('unknown job nope')
  })

  it('is empty for no jobs', () => {
    expect(levels([])).toEqual([])
  })
})

describe('dependentsOf', () => {
  const jobs = g({ build: [], test: ['build'], e2e: ['test'], lint: [], deploy: ['e2e', 'lint'] })

  it('collects direct and indirect dependents', () => {
    expect(dependentsOf(jobs, 'build')).toEqual(new Set(['test', 'e2e', 'deploy']))
    expect(dependentsOf(jobs, 'lint')).toEqual(new Set(['deploy']))
  })

  it('is empty for a job nothing needs', () => {
    expect(dependentsOf(jobs, 'deploy').size).toBe(0)
  })

  it('finds dependents declared before the jobs they depend on', () => {
    expect(dependentsOf(g({ z: ['y'], y: ['x'], x: [] }), 'x')).toEqual(new Set(['y', 'z']))
  })
})

/**
 * Random DAGs: job i may only need jobs with a smaller index, so the graph is acyclic; the jobs
 * are then listed in a shuffled order so file order and dependency order differ.
 */
const dag = fc
  .integer({ min: 1, max: 25 })
  .chain((n) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray(Array.from({ length: i }, (_, k) => k)))),
      fc.shuffledSubarray(
        Array.from({ length: n }, (_, i) => i),
        { minLength: n, maxLength: n },
      ),
    ),
  )
  .map(([needs, order]) =>
    order.map((i): GraphJob => ({ key: `j${i}`, needs: needs[i]!.map((k) => `j${k}`) })),
  )

describe('properties over random DAGs', () => {
  it('levels covers every job exactly once and puts each after all its needs', () => {
    fc.assert(
      fc.property(dag, (jobs) => {
        const lv = levels(jobs)
        const flat = lv.flat()
        expect(flat.sort()).toEqual(jobs.map((j) => j.key).sort())
        const levelOf = new Map(lv.flatMap((keys, d) => keys.map((k) => [k, d] as const)))
        for (const j of jobs) {
          for (const n of j.needs) expect(levelOf.get(n)!).toBeLessThan(levelOf.get(j.key)!)
          // As early as possible: a job is exactly one level after its deepest need.
          const want = j.needs.length ? 1 + Math.max(...j.needs.map((n) => levelOf.get(n)!)) : 0
          expect(levelOf.get(j.key)).toBe(want)
        }
        expect(lv.every((keys) => keys.length > 0)).toBe(true)
      }),
    )
  })

  it('findCycle finds nothing in a DAG', () => {
    fc.assert(fc.property(dag, (jobs) => findCycle(jobs) === null))
  })

  it('a back edge makes findCycle return a real cycle', () => {
    fc.assert(
      fc.property(dag, fc.nat(), fc.nat(), (jobs, pickFrom, pickTo) => {
        // Pick a job `from` and a job `to` it reaches through needs (directly or not), then make
        // `to` need `from`: the graph now has a cycle through both.
        const needs = new Map(jobs.map((j) => [j.key, j.needs]))
        const withNeeds = jobs.filter((j) => j.needs.length)
        fc.pre(withNeeds.length > 0)
        const from = withNeeds[pickFrom % withNeeds.length]!.key
        const reach = new Set<string>()
        const walk = (k: string): void => {
          for (const n of needs.get(k)!) {
            if (reach.has(n)) continue
            reach.add(n)
            walk(n)
          }
        }
        walk(from)
        const to = [...reach][pickTo % reach.size]!
        const cyclic = jobs.map((j) => (j.key === to ? { ...j, needs: [...j.needs, from] } : j))
        const cycle = findCycle(cyclic)
        expect(cycle).not.toBeNull()
        expect(isRealCycle(cyclic, cycle!)).toBe(true)
        // A simple cycle: no job repeats except the closing one.
        expect(new Set(cycle!.slice(0, -1)).size).toBe(cycle!.length - 1)
      }),
    )
  })

  it('dependentsOf is exactly the jobs from which the key is reachable', () => {
    fc.assert(
      fc.property(dag, fc.nat(), (jobs, pick) => {
        const key = jobs[pick % jobs.length]!.key
        const needs = new Map(jobs.map((j) => [j.key, j.needs]))
        const reaches = (from: string): boolean => needs.get(from)!.some((n) => n === key || reaches(n))
        const expected = new Set(jobs.filter((j) => reaches(j.key)).map((j) => j.key))
        expect(dependentsOf(jobs, key)).toEqual(expected)
      }),
    )
  })
})
