import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  expectedFinish,
  forecastDuration,
  meanAbsolutePercentageError,
  median,
  remainingPaths,
} from './duration'

const runs = (node: string, ...ms: number[]) => ms.map((durationMs) => ({ node, durationMs }))

describe('forecastDuration', () => {
  it("takes the median of the job's runs on the node when it has enough there, else anywhere", () => {
    const history = [...runs('n1', 100, 110, 90), ...runs('n2', 400, 420)]
    expect(forecastDuration(history, 'n1')).toBe(100)
    // Two runs on n2 are not enough: the job's runs anywhere.
    expect(forecastDuration(history, 'n2')).toBe(110)
    expect(forecastDuration(history)).toBe(110)
    expect(forecastDuration([], 'n1')).toBeNull()
  })

  it('is not thrown by an outlier', () => {
    expect(forecastDuration(runs('n1', 100, 100, 3_600_000, 100, 100), 'n1')).toBe(100)
  })

  it('counts only the 20 most recent runs', () => {
    const recent = runs('n1', ...Array.from({ length: 20 }, () => 50))
    expect(forecastDuration([...recent, ...runs('n1', ...Array.from({ length: 50 }, () => 999))], 'n1')).toBe(
      50,
    )
  })

  it('always lies within what was seen', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 1e7 }), { minLength: 1, maxLength: 40 }), (ms) => {
        const f = forecastDuration(runs('n', ...ms), 'n')!
        const seen = ms.slice(0, 20)
        return f >= Math.min(...seen) && f <= Math.max(...seen)
      }),
    )
  })
})

describe('the error measure and the critical path', () => {
  it('MAPE is the mean of |forecast - actual| / actual, ignoring zero actuals', () => {
    expect(
      meanAbsolutePercentageError([
        [110, 100],
        [90, 100],
        [5, 0],
      ]),
    ).toBeCloseTo(0.1)
    expect(meanAbsolutePercentageError([])).toBe(0)
    expect(median([3, 1, 2, 10])).toBe(2.5)
  })

  it('gives each job its longest expected path to the end of the run', () => {
    const jobs = [
      { key: 'build', needs: [] },
      { key: 'unit', needs: ['build'] },
      { key: 'e2e', needs: ['build'] },
      { key: 'ship', needs: ['unit', 'e2e'] },
    ]
    const d: Record<string, number> = { build: 5, unit: 2, e2e: 10, ship: 1 }
    expect(remainingPaths(jobs, (k) => d[k] ?? null)).toEqual(
      new Map([
        ['build', 16],
        ['unit', 3],
        ['e2e', 11],
        ['ship', 1],
      ]),
    )
    expect(remainingPaths(jobs, () => null, 7).get('build')).toBe(21)
  })
})

describe('expectedFinish', () => {
  // build (10 s) → test (20 s) and lint (5 s); deploy (4 s) needs test
  const jobs = [
    { key: 'build', needs: [] },
    { key: 'test', needs: ['build'] },
    { key: 'lint', needs: ['build'] },
    { key: 'deploy', needs: ['test'] },
  ]
  const ms: Record<string, number | null> = { build: 10_000, test: 20_000, lint: 5_000, deploy: 4_000 }
  const expected = (k: string) => ms[k] ?? null

  it('is now plus the longest path left, counting what a running job has still to do', () => {
    const waiting = () => ({ state: 'waiting' }) as const
    expect(expectedFinish(jobs, expected, waiting, 1_000)).toBe(1_000 + 34_000)
    const progress = (k: string) =>
      k === 'build'
        ? ({ state: 'done' } as const)
        : k === 'test'
          ? ({ state: 'running', startedAt: 0 } as const)
          : waiting()
    // test has run 15 s of its 20: 5 s left, then deploy's 4 s
    expect(expectedFinish(jobs, expected, progress, 15_000)).toBe(15_000 + 9_000)
    // past its forecast, a running job is taken to end now: then lint (5 s, not started) is longest
    expect(expectedFinish(jobs, expected, progress, 60_000)).toBe(60_000 + 5_000)
    expect(expectedFinish(jobs, expected, () => ({ state: 'done' }), 7)).toBe(7)
  })

  it('is unknown while a job that is left never ran before, known once that job is done', () => {
    const fresh = (k: string) => (k === 'lint' ? null : expected(k))
    expect(expectedFinish(jobs, fresh, () => ({ state: 'waiting' }), 0)).toBeNull()
    const lintDone = (k: string) =>
      k === 'lint' ? ({ state: 'done' } as const) : ({ state: 'waiting' } as const)
    expect(expectedFinish(jobs, fresh, lintDone, 0)).toBe(34_000)
  })
})
