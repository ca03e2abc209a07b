import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  admit,
  DEFAULT_POLICY,
  IllegalLinkTransition,
  linkTransition,
  retryDelay,
  retryTime,
  type BreakerPolicy,
  type LinkEvent,
  type LinkState,
} from './link-breaker'

const policy: BreakerPolicy = { threshold: 3, baseDelayMs: 1000, maxDelayMs: 8000, coolDownMs: 5000 }
const run = (events: LinkEvent[], from: LinkState = { kind: 'idle' }) =>
  events.reduce((s, e) => linkTransition(s, e, policy), from)
const fail = (at: number, random = 0.5, transient = true): LinkEvent => ({
  type: 'failed',
  at,
  error: 'connection timed out',
  transient,
  random,
})

describe('retryDelay', () => {
  it('doubles per failure up to the cap, with equal jitter (half fixed, half random)', () => {
    expect([1, 2, 3, 4, 5, 6].map((f) => retryDelay(f, policy, 0))).toEqual([
      500, 1000, 2000, 4000, 4000, 4000,
    ])
    expect([1, 2, 3, 4, 5, 6].map((f) => retryDelay(f, policy, 0.999999))).toEqual([
      1000, 2000, 4000, 8000, 8000, 8000,
    ])
  })

  it('stays within [d/2, d] for any failure count and random value', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (f, r) => {
          const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (f - 1))
          const got = retryDelay(f, policy, r)
          return got >= d / 2 && got <= d
        },
      ),
    )
  })
})

describe('linkTransition', () => {
  it('connects from idle and uses the connection', () => {
    const s = run([
      { type: 'attempt', at: 0 },
      { type: 'succeeded', at: 40 },
    ])
    expect(s).toEqual({ kind: 'connected', since: 40 })
    expect(admit(s, 50)).toEqual({ kind: 'use' })
  })

  it('backs off exponentially, then opens after `threshold` failures in a row', () => {
    let s = run([{ type: 'attempt', at: 0 }, fail(100)])
    expect(s).toEqual({
      kind: 'backoff',
      failures: 1,
      lastError: 'connection timed out',
      retryAt: 100 + 750,
      downSince: 0,
    })
    // A request does not wait for retryAt: the breaker is closed.
    expect(admit(s, 200)).toEqual({ kind: 'attempt', trial: false })
    s = run([{ type: 'attempt', at: 850 }, fail(900)], s)
    expect(s).toMatchObject({ kind: 'backoff', failures: 2, retryAt: 900 + 1500 })
    s = run([{ type: 'attempt', at: 2400 }, fail(2500)], s)
    // Third failure: open for max(coolDown, delay) = max(5000, 3000).
    expect(s).toEqual({
      kind: 'open',
      failures: 3,
      lastError: 'connection timed out',
      retryAt: 7500,
      downSince: 0,
    })
    expect(admit(s, 7499)).toEqual({
      kind: 'refuse',
      lastError: 'connection timed out',
      failures: 3,
      retryAt: 7500,
      downSince: 0,
    })
    expect(admit(s, 7500)).toEqual({ kind: 'attempt', trial: true })
  })

  it('lets one trial through an open breaker: others fail fast meanwhile; success closes it', () => {
    const open = run([
      { type: 'attempt', at: 0 },
      fail(1),
      { type: 'attempt', at: 2 },
      fail(3),
      { type: 'attempt', at: 4 },
      fail(5),
    ])
    expect(open.kind).toBe('open')
    expect(() => linkTransition(open, { type: 'attempt', at: 6 }, policy)).toThrow(IllegalLinkTransition)
    const trial = linkTransition(open, { type: 'attempt', at: 6000 }, policy)
    expect(trial).toMatchObject({ kind: 'connecting', trial: true, failures: 3, downSince: 0 })
    expect(admit(trial, 6001)).toMatchObject({ kind: 'refuse', lastError: 'connection timed out' })
    const closed = linkTransition(trial, { type: 'succeeded', at: 6100 }, policy)
    expect(closed).toEqual({ kind: 'connected', since: 6100 })
    // A new streak starts from zero.
    expect(
      run(
        [{ type: 'lost', at: 9000, error: 'x', random: 0 }, { type: 'attempt', at: 9000 }, fail(9100)],
        closed,
      ),
    ).toMatchObject({
      kind: 'backoff',
      failures: 1,
    })
  })

  it('a failed trial opens the breaker again, for longer as the streak grows, up to the cap', () => {
    let s: LinkState = run([
      { type: 'attempt', at: 0 },
      fail(0, 0.99),
      { type: 'attempt', at: 1 },
      fail(1, 0.99),
      { type: 'attempt', at: 2 },
      fail(2, 0.99),
    ])
    // Opened for the cool-down (5000 > the 3980 ms delay of a third failure).
    const waits = [(s as { retryAt: number }).retryAt - 2]
    for (let i = 0; i < 4; i++) {
      const at = (s as { retryAt: number }).retryAt
      s = run([{ type: 'attempt', at }, fail(at, 0.99)], s)
      expect(s.kind).toBe('open')
      waits.push((s as { retryAt: number }).retryAt - at)
    }
    expect(waits).toEqual([5000, 7960, 7960, 7960, 7960])
  })

  it('a lost connection retries soon, with jitter, and is not yet a failure', () => {
    const s = run([
      { type: 'attempt', at: 0 },
      { type: 'succeeded', at: 1 },
      { type: 'lost', at: 100, error: 'keepalive timeout', random: 0.5 },
    ])
    expect(s).toEqual({
      kind: 'backoff',
      failures: 0,
      lastError: 'keepalive timeout',
      retryAt: 350,
      downSince: 100,
    })
    expect(retryTime(s)).toBe(350)
  })

  it('a refused host key or credential does not count: back to idle, nothing to wait for', () => {
    const s = run([{ type: 'attempt', at: 0 }, fail(1, 0.5, false)])
    expect(s).toEqual({ kind: 'idle' })
    expect(admit(s, 2)).toEqual({ kind: 'attempt', trial: false })
    expect(retryTime(s)).toBeNull()
  })

  it('joins an attempt under way, and closes a connection on purpose', () => {
    const connecting = run([{ type: 'attempt', at: 0 }])
    expect(admit(connecting, 1)).toEqual({ kind: 'join' })
    expect(run([{ type: 'succeeded', at: 1 }, { type: 'closed' }], connecting)).toEqual({ kind: 'idle' })
  })

  it('refuses illegal moves', () => {
    const idle: LinkState = { kind: 'idle' }
    const connected = run([
      { type: 'attempt', at: 0 },
      { type: 'succeeded', at: 1 },
    ])
    expect(() => linkTransition(idle, { type: 'succeeded', at: 0 })).toThrow(
      /state idle cannot take event succeeded/,
    )
    expect(() => linkTransition(idle, fail(0))).toThrow(IllegalLinkTransition)
    expect(() => linkTransition(idle, { type: 'lost', at: 0, error: '', random: 0 })).toThrow(
      IllegalLinkTransition,
    )
    expect(() => linkTransition(idle, { type: 'closed' })).toThrow(IllegalLinkTransition)
    expect(() => linkTransition(connected, { type: 'attempt', at: 2 })).toThrow(IllegalLinkTransition)
    expect(() => linkTransition(run([{ type: 'attempt', at: 0 }]), { type: 'attempt', at: 1 })).toThrow(
      IllegalLinkTransition,
    )
  })

  it('never lets a request wait on an open breaker, whatever the history (property)', () => {
    const event = fc.oneof(
      fc.record({ type: fc.constant('attempt' as const) }),
      fc.record({ type: fc.constant('succeeded' as const) }),
      fc.record({
        type: fc.constant('failed' as const),
        transient: fc.boolean(),
        random: fc.double({ min: 0, max: 0.999, noNaN: true }),
      }),
      fc.record({
        type: fc.constant('lost' as const),
        random: fc.double({ min: 0, max: 0.999, noNaN: true }),
      }),
      fc.record({ type: fc.constant('closed' as const) }),
    )
    fc.assert(
      fc.property(
        fc.array(fc.tuple(event, fc.integer({ min: 0, max: 20_000 })), { maxLength: 40 }),
        (steps) => {
          let s: LinkState = { kind: 'idle' }
          let now = 0
          let streak = 0
          for (const [e, dt] of steps) {
            now += dt
            let next: LinkState
            try {
              next = linkTransition(s, { ...e, at: now, error: 'e' } as LinkEvent, DEFAULT_POLICY)
            } catch (err) {
              if (!(err instanceof IllegalLinkTransition)) throw err
              continue
            }
            if (e.type === 'failed' && e.transient) streak++
            if (next.kind === 'connected' || next.kind === 'idle') streak = 0
            s = next
            const a = admit(s, now)
            if (s.kind === 'open' && now < s.retryAt && a.kind !== 'refuse') return false
            if (s.kind !== 'open' && s.kind !== 'connecting' && a.kind === 'refuse') return false
            if (streak >= DEFAULT_POLICY.threshold && s.kind === 'backoff') return false
          }
          return true
        },
      ),
    )
  })
})
