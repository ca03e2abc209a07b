/**
 * The state of one pooled SSH connection (a "link"): reconnection with exponential backoff and
 * jitter, and a circuit breaker. Pure: time and randomness come in with the events, so every
 * path is tested without a network or a clock (ssh-pool.ts drives it with real ones).
 *
 *                 attempt                     succeeded
 *     idle ───────────────────▶ connecting ──────────────────▶ connected
 *      ▲  ▲                      │  ▲   │ failed, not transient   │   │
 *      │  └──────────────────────┼──┼───┘ (host key, auth: the   │   │ closed (no users left)
 *      │                         │  │      host answered at once) │   │
 *      └─────────────────────────┼──┼─────────────────────────────┼───┘
 *                                │  │ attempt (a request, or      │ lost (dropped, keepalive
 *                failed, streak  │  │ the timer at retryAt)       │ timeout): retry soon
 *                < threshold     ▼  │                             ▼
 *                              backoff ◀──────────────────────────┘
 *                                │
 *                failed, streak  │ ≥ threshold, or a trial failed
 *                                ▼
 *                              open ──── retryAt passed: one trial attempt ───▶ connecting (trial)
 *
 * - `backoff`: the breaker is closed. The pool retries at `retryAt` on its own; a request does
 *   not wait for that and tries at once (joining an attempt under way).
 * - `open`: requests fail at once with the last error until `retryAt` (no request waits for a
 *   node that does not answer); then one trial attempt, during which other requests still fail
 *   fast. A successful trial closes the breaker; a failed one opens it again, for longer.
 * - Only transient failures (network: refused, timed out, dropped) count. A refused host key or
 *   credential fails the attempt but not the streak: the host answered, and the next try may be
 *   after the user fixed it.
 */

export interface BreakerPolicy {
  /** Consecutive transient failures that open the breaker. @default 3 */
  threshold: number
  /** Delay before the first retry; doubles with each failure of the streak. @default 1000 */
  baseDelayMs: number
  /** Longest delay between retries. @default 30000 */
  maxDelayMs: number
  /** Shortest time an open breaker refuses requests. @default 10000 */
  coolDownMs: number
}

export const DEFAULT_POLICY: BreakerPolicy = {
  threshold: 3,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  coolDownMs: 10_000,
}

export type LinkState =
  | { kind: 'idle' }
  | {
      kind: 'connecting'
      since: number
      /** Transient failures in a row before this attempt. */
      failures: number
      /** The one attempt an open breaker lets through. */
      trial: boolean
      lastError: string | null
      /** Start of the failure streak; null when the link was fine. */
      downSince: number | null
    }
  | { kind: 'connected'; since: number }
  | { kind: 'backoff'; failures: number; lastError: string; retryAt: number; downSince: number }
  | { kind: 'open'; failures: number; lastError: string; retryAt: number; downSince: number }

export type LinkEvent =
  | { type: 'attempt'; at: number }
  | { type: 'succeeded'; at: number }
  /** `random` in [0, 1) for the jitter. */
  | { type: 'failed'; at: number; error: string; transient: boolean; random: number }
  | { type: 'lost'; at: number; error: string; random: number }
  | { type: 'closed' }

export class IllegalLinkTransition extends Error {
  constructor(state: LinkState, event: LinkEvent) {
    super(`a link in state ${state.kind} cannot take event ${event.type}`)
    this.name = 'IllegalLinkTransition'
  }
}

/**
 * The wait before retry number `failures + 1`: base·2^(failures−1), capped, with "equal jitter"
 * (half fixed, half random) so links that failed together do not retry together, yet none retries
 * at once.
 */
export function retryDelay(failures: number, policy: BreakerPolicy, random: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1))
  return Math.round(exp / 2 + (random * exp) / 2)
}

export function linkTransition(
  state: LinkState,
  event: LinkEvent,
  policy: BreakerPolicy = DEFAULT_POLICY,
): LinkState {
  const illegal = () => new IllegalLinkTransition(state, event)
  switch (event.type) {
    case 'attempt':
      if (state.kind === 'idle')
        return {
          kind: 'connecting',
          since: event.at,
          failures: 0,
          trial: false,
          lastError: null,
          downSince: null,
        }
      if (state.kind === 'backoff')
        return { ...base(state), kind: 'connecting', since: event.at, trial: false }
      if (state.kind === 'open') {
        if (event.at < state.retryAt) throw illegal()
        return { ...base(state), kind: 'connecting', since: event.at, trial: true }
      }
      throw illegal()
    case 'succeeded':
      if (state.kind !== 'connecting') throw illegal()
      return { kind: 'connected', since: event.at }
    case 'failed': {
      if (state.kind !== 'connecting') throw illegal()
      if (!event.transient) return { kind: 'idle' }
      const failures = state.failures + 1
      const delay = retryDelay(failures, policy, event.random)
      const streak = { failures, lastError: event.error, downSince: state.downSince ?? state.since }
      if (state.trial || failures >= policy.threshold)
        return { kind: 'open', ...streak, retryAt: event.at + Math.max(policy.coolDownMs, delay) }
      return { kind: 'backoff', ...streak, retryAt: event.at + delay }
    }
    case 'lost':
      if (state.kind !== 'connected') throw illegal()
      // Not yet a failure: the link was fine. Retry soon, with jitter, so a farm-wide blip does not
      // reconnect every node in the same millisecond.
      return {
        kind: 'backoff',
        failures: 0,
        lastError: event.error,
        downSince: event.at,
        retryAt: event.at + Math.round((event.random * policy.baseDelayMs) / 2),
      }
    case 'closed':
      if (state.kind !== 'connected') throw illegal()
      return { kind: 'idle' }
  }
}

function base(state: Extract<LinkState, { kind: 'backoff' | 'open' }>) {
  return { failures: state.failures, lastError: state.lastError, downSince: state.downSince }
}

export type Admission =
  /** A connection is up: use it. */
  | { kind: 'use' }
  /** An attempt is under way: wait for it. */
  | { kind: 'join' }
  /** Start an attempt (a trial when the breaker was open). */
  | { kind: 'attempt'; trial: boolean }
  /** Fail at once: the breaker is open. */
  | { kind: 'refuse'; lastError: string; failures: number; retryAt: number; downSince: number }

/** What a request for the connection should do now. */
export function admit(state: LinkState, now: number): Admission {
  switch (state.kind) {
    case 'connected':
      return { kind: 'use' }
    case 'connecting':
      if (state.trial)
        return {
          kind: 'refuse',
          lastError: state.lastError ?? '',
          failures: state.failures,
          // The trial decides; another request may try once it has.
          retryAt: now,
          downSince: state.downSince ?? state.since,
        }
      return { kind: 'join' }
    case 'idle':
    case 'backoff':
      return { kind: 'attempt', trial: false }
    case 'open':
      if (now >= state.retryAt) return { kind: 'attempt', trial: true }
      return {
        kind: 'refuse',
        lastError: state.lastError,
        failures: state.failures,
        retryAt: state.retryAt,
        downSince: state.downSince,
      }
  }
}

/** When the pool should try again on its own (for a link someone uses), or null. */
export function retryTime(state: LinkState): number | null {
  return state.kind === 'backoff' || state.kind === 'open' ? state.retryAt : null
}
