/**
 * How long a job is expected to take, from its history: the median of its last runs on the same
 * node when it has at least `MIN_SAMPLES` there, else of its last runs anywhere. A median shrugs
 * off the odd run that hung or hit a cold cache, where a mean would not. Pure: the store gives
 * the durations.
 */

/** Runs on one node before its own history is trusted over the job's history anywhere. */
export const MIN_SAMPLES = 3
/** Only the most recent runs count: a job's duration drifts as its code does. */
export const WINDOW = 20

export interface PastRun {
  node: string | null
  durationMs: number
}

/** Expected duration in ms, or null when the job never ran. Runs are newest first. */
export function forecastDuration(runs: readonly PastRun[], node: string | null = null): number | null {
  const valid = runs.filter((r) => Number.isFinite(r.durationMs) && r.durationMs >= 0)
  const here = node === null ? [] : valid.filter((r) => r.node === node).slice(0, WINDOW)
  const sample = here.length >= MIN_SAMPLES ? here : valid.slice(0, WINDOW)
  return sample.length ? median(sample.map((r) => r.durationMs)) : null
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Mean absolute percentage error of forecasts against what happened (pairs of [forecast, actual]). */
export function meanAbsolutePercentageError(pairs: ReadonlyArray<readonly [number, number]>): number {
  const usable = pairs.filter(([, actual]) => actual > 0)
  if (!usable.length) return 0
  return usable.reduce((sum, [f, a]) => sum + Math.abs(f - a) / a, 0) / usable.length
}

/**
 * The longest expected path from each job to the end of its run, itself included: what the
 * scheduler starts first among jobs ready together. Unknown durations count as `unknownMs`.
 */
export function remainingPaths(
  jobs: ReadonlyArray<{ key: string; needs: readonly string[] }>,
  expected: (key: string) => number | null,
  unknownMs = 60_000,
): Map<string, number> {
  const children = new Map<string, string[]>()
  for (const j of jobs) for (const n of j.needs) children.set(n, [...(children.get(n) ?? []), j.key])
  const memo = new Map<string, number>()
  const path = (key: string, depth = 0): number => {
    const known = memo.get(key)
    if (known !== undefined) return known
    if (depth > jobs.length) return 0 // a cycle: the parser refuses them; never loop here
    const own = expected(key) ?? unknownMs
    const v = own + Math.max(0, ...(children.get(key) ?? []).map((c) => path(c, depth + 1)))
    memo.set(key, v)
    return v
  }
  return new Map(jobs.map((j) => [j.key, path(j.key)]))
}

export type JobProgress = { state: 'done' } | { state: 'running'; startedAt: number } | { state: 'waiting' }

/**
 * When a run is expected to finish: now plus its longest expected path over what is left, a
 * running job counting what remains of its forecast (at least nothing: an overrunning job is
 * taken to end now). Assumes slots are there for what is ready. Null while a job that is left
 * has no history: an honest "unknown" beats a guess.
 */
export function expectedFinish(
  jobs: ReadonlyArray<{ key: string; needs: readonly string[] }>,
  expected: (key: string) => number | null,
  progress: (key: string) => JobProgress,
  now: number,
): number | null {
  let unknown = false
  const left = (key: string): number => {
    const p = progress(key)
    if (p.state === 'done') return 0
    const own = expected(key)
    if (own === null) {
      unknown = true
      return 0
    }
    return p.state === 'running' ? Math.max(0, own - (now - p.startedAt)) : own
  }
  const paths = remainingPaths(jobs, left, 0)
  if (unknown) return null
  return now + Math.max(0, ...paths.values())
}
