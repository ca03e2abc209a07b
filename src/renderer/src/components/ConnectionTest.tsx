import type { ConnectionTestView, NodeLiveView } from '../../../shared/model'
import { millis } from '../format'
import type { NodeStore } from '../state/node-store'
import { ActionError, useAction } from './use-action'

/** `yardmaster node <name> test`: connect, authenticate, time a few round trips. */
export function ConnectionTest({ store, node }: { store: NodeStore; node: NodeLiveView }) {
  const test = useAction(store.getState().testConnection)
  return (
    <div className="action">
      <div className="action-row">
        <button onClick={() => void test.run(node.name)} disabled={test.busy}>
          {test.busy ? 'Testing…' : 'Test connection'}
        </button>
        <span className="muted small">connects, authenticates and times round trips</span>
      </div>
      {test.result && <TestResult result={test.result} />}
      <ActionError error={test.error} />
    </div>
  )
}

function TestResult({ result: r }: { result: ConnectionTestView }) {
  return (
    <p className="action-result" role="status" aria-label="Connection test result">
      {r.handshakeMs === null ? 'this machine (no SSH)' : `handshake ${millis(r.handshakeMs)}`}
      {r.firstRequestMs !== null && ` · first engine request ${millis(r.firstRequestMs)}`}
      {` · round trip ${millis(r.roundTripMs)}`}
      <span className="muted"> (median of {r.samples})</span>
      {r.engineVersion && ` · Docker ${r.engineVersion}${r.apiVersion ? `, API ${r.apiVersion}` : ''}`}
    </p>
  )
}
