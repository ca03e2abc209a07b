import { useState } from 'react'
import type { Priority, WorkflowView } from '../../../../shared/model'
import type { QueueStore } from '../../state/queue-store'
import {
  formProblems,
  initialValues,
  PRIORITY_CHOICES,
  triggerInputs,
  type FormValues,
} from '../../state/run-form'
import { ActionError, useAction } from '../use-action'

/** The Run form of one workflow: its workflow_dispatch inputs, the priority, and Run. */
export function RunForm({
  workflow,
  queue,
  onQueued,
}: {
  workflow: WorkflowView
  queue: QueueStore
  onQueued: (queueId: number) => void
}) {
  const [values, setValues] = useState<FormValues>(() => initialValues(workflow.inputs))
  const [priority, setPriority] = useState<Priority>(workflow.priority ?? 'normal')
  const [tried, setTried] = useState(false)
  const problems = formProblems(workflow.inputs, values)
  const send = useAction(() =>
    queue.getState().trigger({
      workflowFile: workflow.file,
      inputs: triggerInputs(workflow.inputs, values),
      priority,
    }),
  )
  const submit = async (e: React.FormEvent) => {
    e.preventDefault()
    setTried(true)
    if (Object.keys(problems).length) return
    const t = await send.run()
    if (t) onQueued(t.queueId)
  }
  const set = (name: string, v: string | boolean) => setValues({ ...values, [name]: v })
  return (
    <form
      className="run-form"
      aria-label={`Run ${workflow.name ?? workflow.file}`}
      onSubmit={submit}
      noValidate
    >
      {workflow.missingSecrets.length > 0 && (
        <p className="warning" role="note">
          It uses {workflow.missingSecrets.map((n) => `secrets.${n}`).join(', ')}, which{' '}
          {workflow.missingSecrets.length === 1 ? 'is' : 'are'} not stored: empty in a run from here, as on
          GitHub. Set {workflow.missingSecrets.length === 1 ? 'it' : 'them'} under{' '}
          <a href="#secrets">Secrets</a> below.
        </p>
      )}
      {workflow.inputs.length === 0 && <p className="sub">This workflow takes no inputs.</p>}
      {workflow.inputs.map((i) => {
        const id = `input-${i.name}`
        const problem = tried ? problems[i.name] : undefined
        return (
          <div className="field" key={i.name}>
            <label htmlFor={id}>
              {i.name}
              {i.required && <span className="required"> (required)</span>}
            </label>
            {i.type === 'boolean' ? (
              <input
                id={id}
                type="checkbox"
                checked={values[i.name] === true}
                onChange={(e) => set(i.name, e.target.checked)}
              />
            ) : i.type === 'choice' ? (
              <select
                id={id}
                value={String(values[i.name] ?? '')}
                onChange={(e) => set(i.name, e.target.value)}
              >
                {i.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                type={i.type === 'number' ? 'number' : 'text'}
                value={String(values[i.name] ?? '')}
                aria-invalid={problem ? true : undefined}
                onChange={(e) => set(i.name, e.target.value)}
              />
            )}
            {i.description && <span className="hint">{i.description}</span>}
            {problem && (
              <span className="field-error" role="alert">
                {i.name}: {problem}
              </span>
            )}
          </div>
        )
      })}
      <div className="field">
        <label htmlFor="priority">priority</label>
        <select id="priority" value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
          {PRIORITY_CHOICES.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" className="primary" disabled={send.busy}>
        {send.busy ? 'Queueing…' : 'Run workflow'}
      </button>
      <ActionError error={send.error} />
    </form>
  )
}
