import { useState } from 'react'
import { useStore } from 'zustand'
import type { QueueStore } from '../../state/queue-store'
import { ActionError, useAction } from '../use-action'

/**
 * The farm's secrets, write-only: a value is typed once, sealed by the backend, and never shown
 * again (not even to this page). Runs get the secrets their workflow names.
 */
export function SecretsPanel({ queue }: { queue: QueueStore }) {
  const secrets = useStore(queue, (s) => s.secrets)
  const [name, setName] = useState('')
  const [value, setValue] = useState('')
  const save = useAction((n: string, v: string) => queue.getState().setSecret(n, v))
  const remove = useAction((n: string) => queue.getState().deleteSecret(n))
  return (
    <section className="secrets-panel" aria-label="Secrets" id="secrets">
      <h3>Secrets</h3>
      <p className="sub">
        Given to the runs whose workflow names them (<code>secrets.NAME</code>), masked in every log line.
        Values are sealed at rest and cannot be read back here: set one again to replace it.
      </p>
      <form
        className="secret-form"
        aria-label="Set a secret"
        onSubmit={(e) => {
          e.preventDefault()
          void save.run(name.trim(), value).then((ok) => {
            if (ok !== null) {
              setName('')
              setValue('')
            }
          })
        }}
      >
        <label htmlFor="secret-name">Name</label>
        <input
          id="secret-name"
          placeholder="DEPLOY_KEY"
          autoComplete="off"
          spellCheck={false}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <label htmlFor="secret-value">Value</label>
        <input
          id="secret-value"
          type="password"
          autoComplete="new-password"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" disabled={save.busy || !name.trim() || !value}>
          Set
        </button>
      </form>
      <ActionError error={save.error ?? remove.error} />
      {secrets.length === 0 ? (
        <p className="empty">No secrets stored.</p>
      ) : (
        <ul className="secret-list" aria-label="Stored secrets">
          {secrets.map((s) => (
            <li key={s.name}>
              <code>{s.name}</code>
              <span className="sub">set {new Date(s.updatedAt).toLocaleString()}</span>
              <button
                disabled={remove.busy}
                onClick={() => void remove.run(s.name)}
                aria-label={`Delete ${s.name}`}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
