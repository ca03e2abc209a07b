import type { NodeLiveView, SeriesPoint } from '../../../shared/model'
import { AdminBadge, HealthBadge } from './NodeBadges'
import { NodeStatus } from './NodeStatus'
import { SampleFacts } from './SampleFacts'
import { CpuSparkline } from './Sparkline'

/**
 * One node in the list: who it is, how it is, why, and its latest figures. Its name is the
 * button that selects it; a click anywhere on the card does the same.
 */
export function NodeCard({
  node,
  points,
  selected,
  now,
  onSelect,
}: {
  node: NodeLiveView
  points: SeriesPoint[]
  selected: boolean
  now: number
  onSelect: () => void
}) {
  return (
    <article
      className={selected ? 'node-card selected' : 'node-card'}
      aria-label={`Node ${node.name}`}
      title={node.description}
      data-node={node.name}
      onClick={onSelect}
    >
      <div className="node-head">
        <h3>
          <button
            className="node-name"
            aria-pressed={selected}
            onClick={(e) => {
              e.stopPropagation()
              onSelect()
            }}
          >
            {node.name}
          </button>
        </h3>
        <HealthBadge health={node.health} />
        <AdminBadge admin={node.admin} />
        <span className="spacer" />
        <span className="muted small">
          {node.executor} · {node.slots} slot{node.slots === 1 ? '' : 's'}
        </span>
      </div>
      <div className="path small">{node.address}</div>
      <Labels labels={node.labels} />
      <NodeStatus node={node} now={now} compact />
      <SampleFacts node={node} now={now} />
      <CpuSparkline points={points} now={now} />
    </article>
  )
}

export function Labels({ labels, name = 'Labels' }: { labels: string[]; name?: string }) {
  return (
    <ul className="labels" aria-label={name}>
      {labels.map((l) => (
        <li key={l} className="label">
          {l}
        </li>
      ))}
    </ul>
  )
}
