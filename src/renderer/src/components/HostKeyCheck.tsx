import type { HostKeyView, NodeLiveView } from '../../../shared/model'
import type { NodeStore } from '../state/node-store'
import { ActionError, useAction } from './use-action'

/**
 * Trust on first use, for a node refused for its host key: show the key its sshd offers and
 * what the known_hosts files say. An unknown key can be trusted, by the exact fingerprint
 * shown; a changed or revoked one is refused, with what to do.
 */
export function HostKeyCheck({ store, node }: { store: NodeStore; node: NodeLiveView }) {
  const check = useAction(store.getState().hostKey)
  const trust = useAction(store.getState().trust)
  const key = trust.result ?? check.result
  return (
    <div className="host-key" aria-label="Host key">
      <div className="action-row">
        <button onClick={() => void check.run(node.name)} disabled={check.busy || trust.busy}>
          {check.busy ? 'Checking…' : 'Check host key'}
        </button>
        <span className="muted small">
          asks {node.name}’s sshd for its key and compares it with the known_hosts files
        </span>
      </div>
      <ActionError error={check.error} />
      {key && (
        <HostKeyVerdict
          hostKey={key}
          trusting={trust.busy}
          onTrust={() => void trust.run(node.name, key.fingerprint)}
        />
      )}
      <ActionError error={trust.error} />
    </div>
  )
}

function HostKeyVerdict({
  hostKey: k,
  trusting,
  onTrust,
}: {
  hostKey: HostKeyView
  trusting: boolean
  onTrust: () => void
}) {
  const where = k.file ? `${k.file}${k.line !== null ? `:${k.line}` : ''}` : null
  const offered = (
    <dl className="key-facts">
      <div>
        <dt>key type</dt>
        <dd>{k.keyType}</dd>
      </div>
      <div>
        <dt>{k.verdict === 'changed' || k.verdict === 'revoked' ? 'offered now' : 'fingerprint'}</dt>
        <dd className="path">{k.fingerprint}</dd>
      </div>
      {k.knownFingerprint && (
        <div>
          <dt>on record</dt>
          <dd className="path">{k.knownFingerprint}</dd>
        </div>
      )}
    </dl>
  )
  // Just recorded: the backend reports the verdict it found (unknown) with `recorded` set.
  switch (k.recorded ? 'trusted' : k.verdict) {
    case 'trusted':
      return (
        <div className="verdict ok" role="status">
          {offered}
          <p>
            {k.recorded ? 'Trusted and recorded' : 'This key is trusted'}
            {where && (
              <>
                {' '}
                in <code>{where}</code>
              </>
            )}
            . The node is probed again within a few seconds.
          </p>
        </div>
      )
    case 'unknown':
      return (
        <div className="verdict warn" role="status">
          <p>
            <strong>No known_hosts file knows this host.</strong> Before you trust it, check the fingerprint
            with the machine’s owner, who can print it with{' '}
            <code>ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub</code>.
          </p>
          {offered}
          <div className="action-row">
            <button onClick={onTrust} disabled={trusting}>
              {trusting ? 'Trusting…' : 'Trust this key'}
            </button>
            {where && (
              <span className="muted small">
                records it in <code>{where}</code>
              </span>
            )}
          </div>
        </div>
      )
    case 'changed':
    case 'revoked':
      return (
        <div className="verdict bad" role="alert">
          <p>
            <strong>
              {k.verdict === 'changed'
                ? 'Refused: the host offers another key than the one on record.'
                : 'Refused: this key is marked @revoked.'}
            </strong>{' '}
            {k.verdict === 'changed'
              ? 'Someone may be in the middle, or the machine was reinstalled.'
              : 'Yardmaster never trusts a revoked key.'}
          </p>
          {offered}
          <p>
            If the change is expected (ask the machine’s owner), remove the old line
            {where ? (
              <>
                {' '}
                from <code>{where}</code>
              </>
            ) : (
              ' from the known_hosts file that holds it'
            )}{' '}
            and check again. Yardmaster does not overwrite it for you.
          </p>
        </div>
      )
  }
}
