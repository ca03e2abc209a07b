/**
 * A node's state: what the health monitor observes (health) and what the admin or the
 * quarantine rule decided (admin). Pure: the monitor and the CLI feed it events; the scheduler
 * asks `canTakeNewJobs`.
 *
 * Health (observed by probes, every few seconds):
 *
 *                  probe ok                     probe ok, with problems
 *     offline ─────────────────▶ online ◀──────────────────────────────▶ degraded
 *   (not probed yet,  ▲  │          │   probe ok, no problems             │
 *    or gone long)    │  │          │ probe failed                        │ probe failed
 *                     │  │          ▼                                     ▼
 *                     │  └──── unreachable ◀─────────────────────────────┘
 *                     │  probe    │     ▲ probe failed (new reason)
 *                     │  failed   │     │
 *                     └───────────┘ gone: unreachable for offlineAfterMs
 *                                         (never straight from online or degraded)
 *
 * Admin (decided; persisted in the data dir):
 *
 *     active ──drain──▶ draining ──drained (no job left)──▶ cordoned
 *       ▲  │                │  ▲                              │  ▲
 *       │  └─────cordon─────┼──┼──────────────────────────────┘  │
 *       │                   │  └──────────drain────────────────┘ │
 *       │◀──────resume──────┴─────────────resume──────────────────┤
 *       │                                                          │
 *       └──infrastructure failures ≥ quarantineAfter──▶ quarantined ┘ (drain, cordon: the admin takes over)
 *                                                        resume ──▶ active
 *
 * Illegal moves (resume an active node, drain a draining one, `drained` when not draining,
 * `gone` from online, quarantine of a node an admin already took out) are refused with a reason.
 */

import type { UnreachableCause } from '../../../../shared/model'

export type { UnreachableCause }

export type HealthState =
  | { kind: 'online'; since: number }
  | { kind: 'degraded'; since: number; reasons: string[] }
  | { kind: 'unreachable'; since: number; cause: UnreachableCause; reason: string }
  | { kind: 'offline'; since: number; reason: string }

export type AdminState =
  | { kind: 'active' }
  | { kind: 'draining'; since: number; reason: string | null }
  | { kind: 'cordoned'; since: number; reason: string | null }
  | { kind: 'quarantined'; since: number; reason: string }

export interface NodeState {
  health: HealthState
  admin: AdminState
  /** Jobs in a row that failed for infrastructure reasons on this node (a job that ran resets it). */
  infraFailures: number
}

export type HealthKind = HealthState['kind']
export type AdminKind = AdminState['kind']

export type NodeEvent =
  | { type: 'probe-ok'; at: number; problems: string[] }
  | { type: 'probe-failed'; at: number; cause: UnreachableCause; reason: string }
  /** Unreachable for long enough to count as gone. */
  | { type: 'gone'; at: number }
  | { type: 'drain'; at: number; reason: string | null }
  | { type: 'cordon'; at: number; reason: string | null }
  | { type: 'resume'; at: number }
  /** A draining node has no job left. */
  | { type: 'drained'; at: number }
  /** A job ended on the node; `infrastructure`: it failed for the node's sake, not the job's. */
  | { type: 'job-ended'; at: number; infrastructure: boolean; reason: string | null }

export interface NodeStatePolicy {
  /** Infrastructure failures in a row that quarantine a node. @default 3 */
  quarantineAfter: number
  /** Unreachable for this long: offline. @default 600000 (10 min) */
  offlineAfterMs: number
}

export const DEFAULT_NODE_POLICY: NodeStatePolicy = { quarantineAfter: 3, offlineAfterMs: 600_000 }

export type NodeTransition =
  { ok: true; state: NodeState; changed: boolean } | { ok: false; error: string; state: NodeState }

export function initialNodeState(at: number, admin: AdminState = { kind: 'active' }): NodeState {
  return { health: { kind: 'offline', since: at, reason: 'not probed yet' }, admin, infraFailures: 0 }
}

/**
 * May the scheduler start a new job on this node? Only when it answers (online, or degraded:
 * slow or short of something, but working) and nobody took it out of service. Running jobs are
 * not concerned: a draining node finishes them.
 */
export function canTakeNewJobs(state: NodeState): boolean {
  return (state.health.kind === 'online' || state.health.kind === 'degraded') && state.admin.kind === 'active'
}

/** Why a node takes no new jobs, in words; null when it does. */
export function whyNoNewJobs(state: NodeState): string | null {
  if (canTakeNewJobs(state)) return null
  const reasons: string[] = []
  const h = state.health
  if (h.kind === 'unreachable') reasons.push(`unreachable: ${h.reason}`)
  if (h.kind === 'offline') reasons.push(`offline: ${h.reason}`)
  const a = state.admin
  if (a.kind !== 'active') reasons.push(`${a.kind}${'reason' in a && a.reason ? `: ${a.reason}` : ''}`)
  return reasons.join('; ')
}

export function nodeTransition(
  state: NodeState,
  event: NodeEvent,
  policy: NodeStatePolicy = DEFAULT_NODE_POLICY,
): NodeTransition {
  const refuse = (error: string): NodeTransition => ({ ok: false, error, state })
  const health = (h: HealthState): NodeTransition => {
    const next = { ...state, health: h }
    return { ok: true, state: next, changed: !sameHealth(state.health, h) }
  }
  const admin = (a: AdminState, infraFailures = state.infraFailures): NodeTransition => ({
    ok: true,
    state: { ...state, admin: a, infraFailures },
    changed: state.admin.kind !== a.kind,
  })
  const h = state.health
  const a = state.admin
  switch (event.type) {
    case 'probe-ok': {
      const problems = [...event.problems].sort()
      if (!problems.length) return health(h.kind === 'online' ? h : { kind: 'online', since: event.at })
      const since = h.kind === 'degraded' ? h.since : event.at
      return health({ kind: 'degraded', since, reasons: problems })
    }
    case 'probe-failed': {
      if (h.kind === 'offline' && h.reason !== 'not probed yet')
        // Gone, and still not answering: stays offline, with the latest reason.
        return health({ ...h, reason: event.reason })
      const since = h.kind === 'unreachable' ? h.since : event.at
      return health({ kind: 'unreachable', since, cause: event.cause, reason: event.reason })
    }
    case 'gone':
      if (h.kind !== 'unreachable')
        return refuse(`a node that is ${h.kind} cannot go offline; it must be unreachable first`)
      if (event.at - h.since < policy.offlineAfterMs)
        return refuse(`unreachable for ${Math.round((event.at - h.since) / 1000)} s only, not yet offline`)
      return health({
        kind: 'offline',
        since: event.at,
        reason: `unreachable since ${new Date(h.since).toISOString()}: ${h.reason}`,
      })
    case 'drain':
      if (a.kind === 'draining') return refuse('the node is already draining')
      return admin({ kind: 'draining', since: event.at, reason: event.reason })
    case 'cordon':
      if (a.kind === 'cordoned') return refuse('the node is already cordoned')
      return admin({ kind: 'cordoned', since: event.at, reason: event.reason })
    case 'drained':
      if (a.kind !== 'draining')
        return refuse(`only a draining node can be drained, and this one is ${a.kind}`)
      return admin({
        kind: 'cordoned',
        since: event.at,
        reason: a.reason ? `drained: ${a.reason}` : 'drained',
      })
    case 'resume':
      if (a.kind === 'active') return refuse('the node is active already: there is nothing to resume')
      // A resumed node starts a new count: the admin has looked at it.
      return admin({ kind: 'active' }, 0)
    case 'job-ended': {
      if (!event.infrastructure) return { ok: true, state: { ...state, infraFailures: 0 }, changed: false }
      const infraFailures = state.infraFailures + 1
      if (infraFailures >= policy.quarantineAfter && a.kind === 'active')
        return admin(
          {
            kind: 'quarantined',
            since: event.at,
            reason:
              `${infraFailures} jobs in a row failed for infrastructure reasons` +
              (event.reason ? ` (last: ${event.reason})` : ''),
          },
          infraFailures,
        )
      return { ok: true, state: { ...state, infraFailures }, changed: false }
    }
  }
}

function sameHealth(x: HealthState, y: HealthState): boolean {
  if (x.kind !== y.kind) return false
  if (x.kind === 'degraded' && y.kind === 'degraded') return x.reasons.join('\n') === y.reasons.join('\n')
  if (x.kind === 'unreachable' && y.kind === 'unreachable') return x.cause === y.cause
  return true
}

/** `online`, `degraded (low disk on /)`, `unreachable (engine: …)`, plus `, draining` and so on. */
export function describeNodeState(state: NodeState): string {
  const h = state.health
  const health =
    h.kind === 'degraded'
      ? `degraded (${h.reasons.join('; ')})`
      : h.kind === 'unreachable'
        ? `unreachable (${h.reason})`
        : h.kind === 'offline'
          ? `offline (${h.reason})`
          : 'online'
  const a = state.admin
  if (a.kind === 'active') return health
  const why = 'reason' in a && a.reason ? `: ${a.reason}` : ''
  return `${health}, ${a.kind}${why}`
}
