import { useState } from 'react'
import type { NodeLiveView } from '../../../shared/model'
import { adminActions, type AdminAction } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'
import { ActionError, useAction } from './use-action'

const LABEL: Record<AdminAction, string> = { drain: 'Drain', cordon: 'Cordon', resume: 'Resume' }

const EFFECT: Record<AdminAction, string> = {
  drain: 'finishes its running jobs, takes no new ones, then is cordoned',
  cordon: 'takes no new jobs; running ones go on',
  resume: 'back in service',
}

/** Drain, cordon, resume: only the moves the node's state allows, with an optional reason. */
export function AdminControls({ store, node }: { store: NodeStore; node: NodeLiveView }) {
  const [reason, setReason] = useState('')
  const admin = useAction(store.getState().admin)
  const act = async (action: AdminAction) => {
    if (await admin.run(node.name, action, action === 'resume' ? '' : reason)) setReason('')
  }
  return (
    <div className="action">
      <label className="field">
        <span>Reason (optional)</span>
        <input
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          placeholder="e.g. disk swap"
          disabled={admin.busy}
        />
      </label>
      <div className="action-row">
        {adminActions(node.admin).map((r) => (
          <button
            key={r.action}
            onClick={() => void act(r.action)}
            disabled={!r.enabled || admin.busy}
            title={r.why ?? `${node.name} ${EFFECT[r.action]}`}
          >
            {LABEL[r.action]}
          </button>
        ))}
      </div>
      <p className="muted small">
        Drain: {EFFECT.drain}. Cordon: {EFFECT.cordon}. Running jobs are never stopped.
      </p>
      <ActionError error={admin.error} />
    </div>
  )
}
