import { describe, expect, it } from 'vitest'
import type { WorkflowInputView } from '../../../shared/model'
import { formProblems, initialValues, triggerInputs } from './run-form'

const input = (name: string, over: Partial<WorkflowInputView> = {}): WorkflowInputView => ({
  name,
  type: 'string',
  required: false,
  default: null,
  options: [],
  description: null,
  ...over,
})

const inputs = [
  input('greeting', { required: true }),
  input('loud', { type: 'boolean', default: true }),
  input('level', { type: 'choice', options: ['info', 'warn'] }),
  input('env', { type: 'choice', options: ['staging', 'prod'], default: 'prod' }),
  input('count', { type: 'number', default: 3 }),
  input('note'),
]

describe('the Run form', () => {
  it("starts from the defaults, a choice's first option when it has none", () => {
    expect(initialValues(inputs)).toEqual({
      greeting: '',
      loud: true,
      level: 'info',
      env: 'prod',
      count: '3',
      note: '',
    })
  })

  it('says what is missing or wrong before sending', () => {
    const v = initialValues(inputs)
    expect(formProblems(inputs, v)).toEqual({ greeting: 'required' })
    expect(formProblems(inputs, { ...v, greeting: 'hi', count: 'many', level: 'debug' })).toEqual({
      count: 'must be a number',
      level: 'must be one of info, warn',
    })
    expect(formProblems(inputs, { ...v, greeting: '  ' })).toEqual({ greeting: 'required' })
  })

  it('sends strings, leaving empty optional fields out', () => {
    expect(triggerInputs(inputs, { ...initialValues(inputs), greeting: 'hi', loud: false })).toEqual({
      greeting: 'hi',
      loud: 'false',
      level: 'info',
      env: 'prod',
      count: '3',
    })
  })
})
