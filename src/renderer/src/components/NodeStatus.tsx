import type { NodeLiveView, UnreachableCause } from '../../../shared/model'
import { duration, when } from '../format'

const CAUSE: Record<UnreachableCause, string> = {
  network: 'network',
  engine: 'engine',
  'host-key': 'host key',
  auth: 'credentials',
}

/**
 * Why a node is as it is: the health reasons (degraded, unreachable, offline, with the cause)
 * and the admin's decision, each with since when. Nothing for a node that is online and
 * active. `compact` (the cards) keeps each line to three rows; the whole text is its tooltip.
 */
export function NodeStatus({ node, now, compact }: { node: NodeLiveView; now: number; compact?: boolean }) {
  const lines: Array<{ key: string; text: string; tone: 'warn' | 'bad' | 'info' }> = []
  if (node.health !== 'online') {
    const tone = node.health === 'degraded' ? 'warn' : 'bad'
    const cause = node.unreachableCause ? ` (${CAUSE[node.unreachableCause]})` : ''
    const since = `${node.health}${cause} since ${when(node.healthSince)} (${duration(node.healthSince, null, now)})`
    const reasons = node.healthReasons.length ? node.healthReasons : ['no reason given']
    reasons.forEach((r, i) => lines.push({ key: `h${i}`, text: i === 0 ? `${since}: ${r}` : r, tone }))
  }
  if (node.admin !== 'active') {
    const since = node.adminSince === null ? '' : ` since ${when(node.adminSince)}`
    const reason = node.adminReason ? `: ${node.adminReason}` : ''
    lines.push({
      key: 'a',
      text: `${node.admin}${since}${reason}`,
      tone: node.admin === 'quarantined' ? 'bad' : 'info',
    })
  }
  if (node.infraFailures > 0 && node.admin !== 'quarantined') {
    lines.push({
      key: 'f',
      text: `${node.infraFailures} job${node.infraFailures === 1 ? '' : 's'} in a row failed for the node's sake (quarantined at 3)`,
      tone: 'warn',
    })
  }
  if (!lines.length) return null
  return (
    <ul
      className={compact ? 'node-status compact' : 'node-status'}
      aria-label={`Why ${node.name} is ${node.health}`}
    >
      {lines.map((l) => (
        <li key={l.key} className={`tone-${l.tone}`} title={compact ? l.text : undefined}>
          {l.text}
        </li>
      ))}
    </ul>
  )
}
