import { useState, type ChangeEvent, type FormEvent } from 'react'
import type { NodeLiveView } from '../../../shared/model'
import { draftFrom, planEdit, type EditDraft } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'
import { ActionError, useAction } from './use-action'

/**
 * Labels, slots and default image, written back to the farm file (comments kept). Save sends
 * only what changed. The embedded default farm has no file: then the form says so.
 */
export function NodeEditForm({
  store,
  node,
  farmFile,
}: {
  store: NodeStore
  node: NodeLiveView
  farmFile: string | null
}) {
  const [draft, setDraft] = useState<EditDraft>(() => draftFrom(node))
  const save = useAction(store.getState().edit)
  const plan = planEdit(node, draft)
  const changed = Object.keys(plan.edit)
  const readOnly = farmFile === null
  const field = (k: keyof EditDraft) => ({
    value: draft[k],
    disabled: readOnly || save.busy,
    onChange: (e: ChangeEvent<HTMLInputElement>) => {
      setDraft({ ...draft, [k]: e.target.value })
      save.reset()
    },
  })
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const saved = await save.run(node.name, plan.edit)
    if (saved) setDraft(draftFrom(saved))
  }
  return (
    <form className="edit-form" onSubmit={(e) => void submit(e)} aria-label={`Edit ${node.name}`}>
      {readOnly && (
        <p className="muted small">
          This is the embedded default farm (this machine): there is no farm file to write to. Start
          Yardmaster with <code>--farm farm.yml</code> to edit nodes.
        </p>
      )}
      <label className="field">
        <span>Labels (comma-separated; every node also has self-hosted)</span>
        <input {...field('labels')} placeholder="linux, gpu" />
      </label>
      <div className="field-row">
        <label className="field">
          <span>Slots</span>
          <input {...field('slots')} inputMode="numeric" size={4} />
        </label>
        <label className="field grow">
          <span>Default image</span>
          <input
            {...field('defaultImage')}
            placeholder={node.executor === 'shell' ? 'none (shell node)' : 'none (jobs need container:)'}
          />
        </label>
      </div>
      {plan.problems.map((p) => (
        <p key={p} className="action-error">
          {p}
        </p>
      ))}
      <div className="action-row">
        <button
          type="submit"
          disabled={readOnly || save.busy || changed.length === 0 || plan.problems.length > 0}
        >
          {save.busy ? 'Saving…' : 'Save'}
        </button>
        <button
          type="button"
          disabled={readOnly || save.busy || changed.length === 0}
          onClick={() => setDraft(draftFrom(node))}
        >
          Undo changes
        </button>
        <span className="muted small" role="status">
          {changed.length
            ? `changes ${changed.join(', ')}`
            : save.result
              ? `saved to ${node.source ? `${node.source.file}:${node.source.line}` : farmFile}`
              : 'nothing changed'}
        </span>
      </div>
      <ActionError error={save.error} />
    </form>
  )
}
