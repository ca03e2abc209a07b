import type { AdminKind, HealthKind } from '../../../shared/model'

const HEALTH_SYMBOL: Record<HealthKind, string> = {
  online: '●',
  degraded: '▲',
  unreachable: '✕',
  offline: '○',
}

const ADMIN_SYMBOL: Record<AdminKind, string> = {
  active: '▶',
  draining: '⇣',
  cordoned: '⏸',
  quarantined: '⛔',
}

/** What the health monitor sees: colour and word, so it reads without colour too. */
export function HealthBadge({ health }: { health: HealthKind }) {
  return (
    <span className={`badge health-${health}`} title={`health: ${health}`}>
      <span aria-hidden="true">{HEALTH_SYMBOL[health]}</span> {health}
    </span>
  )
}

/** What an admin (or the quarantine rule) decided. */
export function AdminBadge({ admin }: { admin: AdminKind }) {
  return (
    <span className={`badge admin-${admin}`} title={`admin: ${admin}`}>
      <span aria-hidden="true">{ADMIN_SYMBOL[admin]}</span> {admin}
    </span>
  )
}
