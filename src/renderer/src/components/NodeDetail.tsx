import type { ReactNode } from 'react'
import type { NodeLiveView } from '../../../shared/model'
import type { NodeStore } from '../state/node-store'
import { AdminControls } from './AdminControls'
import { CapabilitiesProbe } from './CapabilitiesProbe'
import { ConnectionTest } from './ConnectionTest'
import { EngineContents } from './EngineContents'
import { HostKeyCheck } from './HostKeyCheck'
import { AdminBadge, HealthBadge } from './NodeBadges'
import { NodeEditForm } from './NodeEditForm'
import { NodeEvents } from './NodeEvents'
import { NodeStatus } from './NodeStatus'

/** One node: what it is, why it is so, and what can be done with it. */
export function NodeDetail({
  store,
  node,
  farmFile,
  now,
}: {
  store: NodeStore
  node: NodeLiveView
  farmFile: string | null
  now: number
}) {
  return (
    <section className="node-detail" aria-label={`Node ${node.name} details`}>
      <header className="run-header">
        <h2>
          {node.name} <HealthBadge health={node.health} /> <AdminBadge admin={node.admin} />
        </h2>
        <div className="run-facts">
          <span className="path">{node.address}</span>
          <span>{node.executor}</span>
          <span>
            {node.slots} slot{node.slots === 1 ? '' : 's'}
          </span>
          <span className={node.canTakeNewJobs ? 'ok' : 'bad'}>
            {node.canTakeNewJobs ? 'takes new jobs' : 'takes no new jobs'}
          </span>
          {node.source && (
            <span>
              declared in{' '}
              <span className="path">
                {node.source.file}:{node.source.line}
              </span>
            </span>
          )}
        </div>
        <NodeStatus node={node} now={now} />
      </header>
      <div className="panels">
        {node.unreachableCause === 'host-key' && (
          <Panel title="Host key">
            <HostKeyCheck store={store} node={node} />
          </Panel>
        )}
        <Panel title="Connection">
          <ConnectionTest store={store} node={node} />
        </Panel>
        <Panel title="Service">
          <AdminControls store={store} node={node} />
        </Panel>
        <Panel title="Farm file">
          <NodeEditForm store={store} node={node} farmFile={farmFile} />
        </Panel>
        <Panel title="Recent events">
          <NodeEvents store={store} />
        </Panel>
        <Panel title="Capabilities" wide>
          <CapabilitiesProbe store={store} node={node} />
        </Panel>
        <Panel title="Engine" wide>
          <EngineContents store={store} node={node} />
        </Panel>
      </div>
    </section>
  )
}

function Panel({ title, wide, children }: { title: string; wide?: boolean; children: ReactNode }) {
  return (
    <section className={wide ? 'panel wide' : 'panel'} aria-label={title}>
      <h3>{title}</h3>
      {children}
    </section>
  )
}
