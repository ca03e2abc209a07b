import { describe, expect, it } from 'vitest'
import {
  canTakeNewJobs,
  describeNodeState,
  initialNodeState,
  nodeTransition,
  whyNoNewJobs,
  type AdminState,
  type HealthState,
  type NodeEvent,
  type NodeState,
} from './node-state'

const policy = { quarantineAfter: 3, offlineAfterMs: 60_000 }
/** Applies events in order; fails the test on a refused one. */
function run(events: NodeEvent[], from: NodeState = initialNodeState(0)): NodeState {
  return events.reduce((s, e) => {
    const r = nodeTransition(s, e, policy)
    if (!r.ok) throw new Error(`refused ${e.type}: ${r.error}`)
    return r.state
  }, from)
}
const ok = (at: number, problems: string[] = []): NodeEvent => ({ type: 'probe-ok', at, problems })
const failed = (at: number, reason = 'no answer within 4000 ms'): NodeEvent => ({
  type: 'probe-failed',
  at,
  cause: 'network',
  reason,
})

describe('health', () => {
  it('starts offline (not probed yet), then follows the probes', () => {
    const s0 = initialNodeState(5)
    expect(s0).toEqual({
      health: { kind: 'offline', since: 5, reason: 'not probed yet' },
      admin: { kind: 'active' },
      infraFailures: 0,
    })
    expect(canTakeNewJobs(s0)).toBe(false)
    expect(run([ok(10)]).health).toEqual({ kind: 'online', since: 10 })
    expect(run([ok(10), ok(20, ['low disk on /'])]).health).toEqual({
      kind: 'degraded',
      since: 20,
      reasons: ['low disk on /'],
    })
    expect(run([failed(10)]).health).toMatchObject({ kind: 'unreachable', since: 10, cause: 'network' })
  })

  it('keeps `since` while the state holds, and says whether it changed', () => {
    const online = run([ok(10)])
    const again = nodeTransition(online, ok(20), policy)
    expect(again).toEqual({ ok: true, state: online, changed: false })
    const down = run([failed(30, 'a')], online)
    const stillDown = nodeTransition(down, failed(40, 'b'), policy)
    // A new reason is kept, but it is the same state: no event.
    expect(stillDown).toMatchObject({
      ok: true,
      changed: false,
      state: { health: { since: 30, reason: 'b' } },
    })
    const engine = nodeTransition(
      down,
      { type: 'probe-failed', at: 50, cause: 'engine', reason: 'x' },
      policy,
    )
    expect(engine.ok && engine.changed).toBe(true)
    const d1 = run([ok(10, ['b', 'a'])])
    expect(d1.health).toMatchObject({ reasons: ['a', 'b'] })
    expect(nodeTransition(d1, ok(20, ['a', 'b']), policy)).toMatchObject({ changed: false })
    expect(nodeTransition(d1, ok(20, ['a']), policy)).toMatchObject({ changed: true })
  })

  it('goes offline only after being unreachable long enough, and comes back on an answer', () => {
    const down = run([ok(0), failed(1000)])
    expect(nodeTransition(down, { type: 'gone', at: 30_000 }, policy)).toMatchObject({
      ok: false,
      error: 'unreachable for 29 s only, not yet offline',
    })
    const gone = run([{ type: 'gone', at: 61_000 }], down)
    expect(gone.health).toMatchObject({ kind: 'offline', since: 61_000 })
    expect((gone.health as Extract<HealthState, { kind: 'offline' }>).reason).toMatch(
      /^unreachable since 1970-01-01T00:00:01\.000Z: no answer/,
    )
    // Still failing: still offline, with the latest reason, no event.
    expect(nodeTransition(gone, failed(90_000, 'refused'), policy)).toMatchObject({
      changed: false,
      state: { health: { kind: 'offline', reason: 'refused' } },
    })
    expect(run([ok(100_000)], gone).health).toEqual({ kind: 'online', since: 100_000 })
  })

  it('refuses offline straight from online or degraded', () => {
    for (const s of [run([ok(0)]), run([ok(0, ['x'])])])
      expect(nodeTransition(s, { type: 'gone', at: 10 ** 9 }, policy)).toMatchObject({
        ok: false,
        error: expect.stringMatching(/cannot go offline; it must be unreachable first/),
      })
  })
})

describe('admin', () => {
  const online = run([ok(0)])

  it('drain: no new jobs, then cordoned once drained; resume takes jobs again', () => {
    const draining = run([{ type: 'drain', at: 5, reason: 'disk swap' }], online)
    expect(draining.admin).toEqual({ kind: 'draining', since: 5, reason: 'disk swap' })
    expect(canTakeNewJobs(draining)).toBe(false)
    expect(whyNoNewJobs(draining)).toBe('draining: disk swap')
    const drained = run([{ type: 'drained', at: 9 }], draining)
    expect(drained.admin).toEqual({ kind: 'cordoned', since: 9, reason: 'drained: disk swap' })
    const back = run([{ type: 'resume', at: 10 }], drained)
    expect(back.admin).toEqual({ kind: 'active' })
    expect(canTakeNewJobs(back)).toBe(true)
  })

  it('refuses illegal moves, saying why', () => {
    const refused = (s: NodeState, e: NodeEvent) => {
      const r = nodeTransition(s, e, policy)
      expect(r.ok).toBe(false)
      // The state is left as it was.
      expect(r.state).toBe(s)
      return (r as { error: string }).error
    }
    expect(refused(online, { type: 'resume', at: 1 })).toBe(
      'the node is active already: there is nothing to resume',
    )
    expect(refused(online, { type: 'drained', at: 1 })).toBe(
      'only a draining node can be drained, and this one is active',
    )
    const draining = run([{ type: 'drain', at: 1, reason: null }], online)
    expect(refused(draining, { type: 'drain', at: 2, reason: null })).toBe('the node is already draining')
    const cordoned = run([{ type: 'cordon', at: 1, reason: null }], online)
    expect(refused(cordoned, { type: 'cordon', at: 2, reason: null })).toBe('the node is already cordoned')
    // Cordon and drain replace each other; both refuse new jobs.
    expect(run([{ type: 'drain', at: 3, reason: null }], cordoned).admin.kind).toBe('draining')
    expect(run([{ type: 'cordon', at: 3, reason: null }], draining).admin.kind).toBe('cordoned')
  })

  it('quarantines after 3 infrastructure failures in a row; a job that runs resets the count', () => {
    const infra = (at: number, reason: string | null = 'container create failed'): NodeEvent => ({
      type: 'job-ended',
      at,
      infrastructure: true,
      reason,
    })
    const fine: NodeEvent = { type: 'job-ended', at: 0, infrastructure: false, reason: null }
    const two = run([infra(1), infra(2)], online)
    expect(two).toMatchObject({ infraFailures: 2, admin: { kind: 'active' } })
    expect(run([fine, infra(3)], two).infraFailures).toBe(1)
    const third = nodeTransition(two, infra(3, 'engine gone'), policy)
    expect(third).toMatchObject({ ok: true, changed: true })
    const q = (third as { state: NodeState }).state
    expect(q.admin).toEqual({
      kind: 'quarantined',
      since: 3,
      reason: '3 jobs in a row failed for infrastructure reasons (last: engine gone)',
    })
    expect(canTakeNewJobs(q)).toBe(false)
    expect(describeNodeState(q)).toBe(
      'online, quarantined: 3 jobs in a row failed for infrastructure reasons (last: engine gone)',
    )
    // Resume ends it and starts a new count.
    expect(run([{ type: 'resume', at: 4 }], q)).toMatchObject({ admin: { kind: 'active' }, infraFailures: 0 })
    // A node an admin took out is not quarantined on top.
    const cordoned = run([{ type: 'cordon', at: 1, reason: null }, infra(2), infra(3), infra(4)], online)
    expect(cordoned.admin.kind).toBe('cordoned')
  })
})

describe('canTakeNewJobs', () => {
  const health: HealthState[] = [
    { kind: 'online', since: 0 },
    { kind: 'degraded', since: 0, reasons: ['slow engine'] },
    { kind: 'unreachable', since: 0, cause: 'network', reason: 'x' },
    { kind: 'offline', since: 0, reason: 'x' },
  ]
  const admin: AdminState[] = [
    { kind: 'active' },
    { kind: 'draining', since: 0, reason: null },
    { kind: 'cordoned', since: 0, reason: null },
    { kind: 'quarantined', since: 0, reason: 'x' },
  ]

  it('only an answering node that nobody took out of service', () => {
    const table = health.map((h) =>
      admin.map((a) => (canTakeNewJobs({ health: h, admin: a, infraFailures: 0 }) ? 'yes' : 'no')),
    )
    expect(table).toEqual([
      ['yes', 'no', 'no', 'no'],
      ['yes', 'no', 'no', 'no'],
      ['no', 'no', 'no', 'no'],
      ['no', 'no', 'no', 'no'],
    ])
    expect(whyNoNewJobs({ health: health[2]!, admin: admin[2]!, infraFailures: 0 })).toBe(
      'unreachable: x; cordoned',
    )
    expect(whyNoNewJobs({ health: health[0]!, admin: admin[0]!, infraFailures: 0 })).toBeNull()
  })

  it('describes states in words', () => {
    expect(describeNodeState({ health: health[1]!, admin: admin[0]!, infraFailures: 0 })).toBe(
      'degraded (slow engine)',
    )
    expect(describeNodeState({ health: health[2]!, admin: admin[1]!, infraFailures: 0 })).toBe(
      'unreachable (x), draining',
    )
  })
})
