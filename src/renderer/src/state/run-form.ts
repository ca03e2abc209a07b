/**
 * The Run form of a workflow, built from its `workflow_dispatch` inputs: starting values from
 * the defaults (a choice's first option when it has none, as GitHub's form does), what is
 * missing before it can be sent, and the values as the API takes them (strings).
 */
import type { Priority, WorkflowInputView } from '../../../shared/model'

export type FormValues = Record<string, string | boolean>

export const PRIORITY_CHOICES: Array<{ value: Priority; label: string }> = [
  { value: 'hotfix', label: 'hotfix: the first slot that frees up' },
  { value: 'high', label: 'high' },
  { value: 'normal', label: 'normal' },
  { value: 'low', label: 'low: when nothing else waits' },
]

export function initialValues(inputs: readonly WorkflowInputView[]): FormValues {
  const out: FormValues = {}
  for (const i of inputs) {
    if (i.type === 'boolean') out[i.name] = i.default === true || i.default === 'true'
    else if (i.type === 'choice') out[i.name] = i.default !== null ? String(i.default) : (i.options[0] ?? '')
    else out[i.name] = i.default === null ? '' : String(i.default)
  }
  return out
}

/** Input name -> what is wrong with its value; empty when the form can be sent. */
export function formProblems(
  inputs: readonly WorkflowInputView[],
  values: FormValues,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const i of inputs) {
    const v = values[i.name]
    if (i.type === 'boolean') continue
    const text = typeof v === 'string' ? v.trim() : ''
    if (i.required && !text) out[i.name] = 'required'
    else if (i.type === 'number' && text && !Number.isFinite(Number(text))) out[i.name] = 'must be a number'
    else if (i.type === 'choice' && text && !i.options.includes(text))
      out[i.name] = `must be one of ${i.options.join(', ')}`
  }
  return out
}

/** The values as `runs.trigger` takes them: strings, empty optional fields left out. */
export function triggerInputs(
  inputs: readonly WorkflowInputView[],
  values: FormValues,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const i of inputs) {
    const v = values[i.name]
    if (typeof v === 'boolean') out[i.name] = String(v)
    else if (v !== undefined && v !== '') out[i.name] = v
  }
  return out
}
