/**
 * What is decided about a node and kept in the history, so every process agrees: drain, cordon
 * and resume (the CLI, the API), and the count of infrastructure failures that quarantines a
 * node (every run, in whatever process it runs). Each change is moved by the node state machine
 * (which refuses illegal moves) and written with its event in one transaction. A health monitor
 * running in another process picks the change up on its next round.
 */
import type { NodeMetricsStore } from '../store/node-metrics-store'
import {
  canTakeNewJobs,
  DEFAULT_NODE_POLICY,
  describeNodeState,
  initialNodeState,
  nodeTransition,
  type AdminState,
  type NodeEvent,
  type NodeStatePolicy,
} from './health/node-state'

export type AdminCommand = Extract<NodeEvent, { type: 'drain' | 'cordon' | 'resume' }>

export type AdminResult =
  { ok: true; from: AdminState; to: AdminState } | { ok: false; error: string; state: AdminState }

/** The part of the history this module writes; NodeMetricsStore is it. */
export type NodeLedger = Pick<
  NodeMetricsStore,
  'adminStates' | 'setAdminState' | 'addEvent' | 'infraFailures' | 'setInfraFailures' | 'atomically'
>

export function applyAdminCommand(store: NodeLedger, node: string, command: AdminCommand): AdminResult {
  return store.atomically(() => {
    const from = store.adminStates().get(node) ?? { kind: 'active' }
    const r = nodeTransition(initialNodeState(command.at, from), command)
    if (!r.ok) return { ok: false, error: r.error, state: from }
    const to = r.state.admin
    store.setAdminState(node, to)
    // A resumed node starts a new count: the admin has looked at it.
    if (to.kind === 'active') store.setInfraFailures(node, 0, command.at)
    store.addEvent({
      node,
      at: command.at,
      kind: 'admin',
      from: from.kind,
      to: to.kind,
      reason: 'reason' in to ? to.reason : null,
    })
    return { ok: true, from, to }
  })
}

/** What a finished job says of the node it ran on. */
export type JobOutcome =
  /** It failed for the node's sake: the connection dropped, the engine failed, no workspace. */
  | { kind: 'infrastructure'; at: number; reason: string }
  /** The node did its part (the job may still have failed, for its own reasons). */
  | { kind: 'worked'; at: number }

export interface JobOutcomeResult {
  /** Infrastructure failures in a row on the node, this one included. */
  infraFailures: number
  /** Set when this outcome quarantined the node: why. */
  quarantined: string | null
}

/**
 * Counts a job's outcome against its node: an infrastructure failure adds one, a job that ran
 * resets the count; at `policy.quarantineAfter` in a row an active node is quarantined, with an
 * event that says why. A node an admin took out already stays as the admin left it.
 */
export function recordJobOutcome(
  store: NodeLedger,
  node: string,
  outcome: JobOutcome,
  policy: NodeStatePolicy = DEFAULT_NODE_POLICY,
): JobOutcomeResult {
  return store.atomically(() => {
    const admin = store.adminStates().get(node) ?? { kind: 'active' as const }
    const before = {
      ...initialNodeState(outcome.at, admin),
      infraFailures: store.infraFailures().get(node) ?? 0,
    }
    const event: NodeEvent =
      outcome.kind === 'infrastructure'
        ? { type: 'job-ended', at: outcome.at, infrastructure: true, reason: outcome.reason }
        : { type: 'job-ended', at: outcome.at, infrastructure: false, reason: null }
    const r = nodeTransition(before, event, policy)
    // job-ended is never refused; the guard keeps the types honest.
    if (!r.ok) return { infraFailures: before.infraFailures, quarantined: null }
    const count = r.state.infraFailures
    if (count !== before.infraFailures)
      store.setInfraFailures(
        node,
        count,
        outcome.at,
        outcome.kind === 'infrastructure' ? outcome.reason : null,
      )
    if (!r.changed) return { infraFailures: count, quarantined: null }
    const to = r.state.admin
    const reason = 'reason' in to ? to.reason : null
    store.setAdminState(node, to)
    store.addEvent({ node, at: outcome.at, kind: 'admin', from: admin.kind, to: to.kind, reason })
    return { infraFailures: count, quarantined: reason }
  })
}

/** Nodes an admin took out of service (drained, cordoned, quarantined), with why: they take no new jobs. */
export function outOfService(store: Pick<NodeLedger, 'adminStates'>, now = Date.now()): Map<string, string> {
  const out = new Map<string, string>()
  for (const [node, admin] of store.adminStates()) {
    const state = initialNodeState(now, admin)
    if (!canTakeNewJobs(state)) out.set(node, describeNodeState(state))
  }
  return out
}
