/**
 * Drain, cordon and resume, as the CLI (and later the API) does them: the admin state is read
 * from the history, moved by the node state machine (which refuses illegal moves), written back
 * with an event. A health monitor running in another process picks the change up on its next
 * round.
 */
import type { HealthRecorder } from './health-monitor'
import { initialNodeState, nodeTransition, type AdminState, type NodeEvent } from './node-state'

export type AdminCommand = Extract<NodeEvent, { type: 'drain' | 'cordon' | 'resume' }>

export type AdminResult =
  { ok: true; from: AdminState; to: AdminState } | { ok: false; error: string; state: AdminState }

export function applyAdminCommand(
  store: Pick<HealthRecorder, 'adminStates' | 'setAdminState' | 'addEvent'>,
  node: string,
  command: AdminCommand,
): AdminResult {
  const from = store.adminStates().get(node) ?? { kind: 'active' }
  const r = nodeTransition(initialNodeState(command.at, from), command)
  if (!r.ok) return { ok: false, error: r.error, state: from }
  const to = r.state.admin
  store.setAdminState(node, to)
  store.addEvent({
    node,
    at: command.at,
    kind: 'admin',
    from: from.kind,
    to: to.kind,
    reason: 'reason' in to ? to.reason : null,
  })
  return { ok: true, from, to }
}
