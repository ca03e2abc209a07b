/**
 * The dependency graph of a workflow's jobs: pure functions, no I/O.
 */

export interface GraphJob {
  key: string
  needs: readonly string[]
}

/**
 * One dependency cycle as a path that starts and ends on the same job (`a -> b -> a`),
 * or null. Jobs are visited in the given order so the answer is stable.
 */
export function findCycle(jobs: readonly GraphJob[]): string[] | null {
  const needs = new Map(jobs.map((j) => [j.key, j.needs]))
  const state = new Map<string, 'visiting' | 'done'>()
  const stack: string[] = []

  const visit = (key: string): string[] | null => {
    const s = state.get(key)
    if (s === 'done') return null
    if (s === 'visiting') return [...stack.slice(stack.indexOf(key)), key]
    state.set(key, 'visiting')
    stack.push(key)
    for (const dep of needs.get(key) ?? []) {
      if (!needs.has(dep)) continue // unknown needs are reported elsewhere
      const cycle = visit(dep)
      if (cycle) return cycle
    }
    stack.pop()
    state.set(key, 'done')
    return null
  }

  for (const j of jobs) {
    const cycle = visit(j.key)
    if (cycle) return cycle
  }
  return null
}

/**
 * Jobs grouped into levels: every job's needs are in earlier levels, so each level can run
 * in parallel. Requires an acyclic graph with known needs.
 */
export function levels(jobs: readonly GraphJob[]): string[][] {
  const depth = new Map<string, number>()
  const byKey = new Map(jobs.map((j) => [j.key, j]))
  const depthOf = (key: string): number => {
    const known = depth.get(key)
    if (known !== undefined) return known
    const job = byKey.get(key)
    if (!job) throw new Error(`unknown job ${key}`)
    const d = job.needs.length ? 1 + Math.max(...job.needs.map(depthOf)) : 0
    depth.set(key, d)
    return d
  }
  const out: string[][] = []
  for (const j of jobs) {
    const d = depthOf(j.key)
    ;(out[d] ??= []).push(j.key)
  }
  return out
}

/** Every job that depends, directly or not, on `key`. */
export function dependentsOf(jobs: readonly GraphJob[], key: string): Set<string> {
  const out = new Set<string>()
  let grew = true
  while (grew) {
    grew = false
    for (const j of jobs) {
      if (out.has(j.key)) continue
      if (j.needs.some((n) => n === key || out.has(n))) {
        out.add(j.key)
        grew = true
      }
    }
  }
  return out
}
