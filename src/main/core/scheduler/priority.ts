import type { Priority } from '../../../shared/model'

export type { Priority }

/**
 * Priority classes, chosen when a run is triggered. Within a
 * class jobs go first in, first out; aging lifts a job that has waited long one class up at a
 * time, up to `high`, so a steady stream of `normal` work never starves a `low` job. Only a
 * trigger makes a hotfix: aging never does.
 */

export const PRIORITIES: readonly Priority[] = ['hotfix', 'high', 'normal', 'low']

/** 0 is served first. */
export function rankOf(p: Priority): number {
  return PRIORITIES.indexOf(p)
}

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value)
}

/** The default time a job waits before aging lifts it one class. @default 10 minutes */
export const DEFAULT_AGING_MS = 10 * 60_000

/** The class a job is served in after waiting `waitedMs`. */
export function effectiveRank(p: Priority, waitedMs: number, agingMs = DEFAULT_AGING_MS): number {
  const rank = rankOf(p)
  if (rank <= 1 || agingMs <= 0) return rank
  const lifted = rank - Math.floor(Math.max(0, waitedMs) / agingMs)
  return Math.max(1, lifted)
}
