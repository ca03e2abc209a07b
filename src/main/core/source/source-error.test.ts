import { describe, expect, it } from 'vitest'
import { formatProblem, InvalidSourceError, type SourceProblem } from './source-error'

const p = (line: number, path: string, message: string): SourceProblem => ({
  file: 'ci.yml',
  line,
  col: 3,
  path,
  message,
})

describe('formatProblem', () => {
  it('writes file:line:col: message, then the field path', () => {
    expect(formatProblem(p(4, 'jobs.a.steps', 'bad'))).toBe('ci.yml:4:3: bad (jobs.a.steps)')
  })

  it('leaves out an empty path', () => {
    expect(formatProblem(p(1, '', 'not YAML'))).toBe('ci.yml:1:3: not YAML')
  })
})

describe('InvalidSourceError', () => {
  it('lists every problem, and says one problem or many', () => {
    const one = new InvalidSourceError('farm', [p(1, '', 'x')])
    expect(one.name).toBe('InvalidSourceError')
    expect(one.message).toBe('Farm file is invalid (1 problem):\n  ci.yml:1:3: x')
    const two = new InvalidSourceError('workflow', [p(1, 'a', 'x'), p(2, 'b', 'y')])
    expect(two.message).toBe('Workflow is invalid (2 problems):\n  ci.yml:1:3: x (a)\n  ci.yml:2:3: y (b)')
    expect(two.problems).toHaveLength(2)
    expect(two.kind).toBe('workflow')
    expect(two).toBeInstanceOf(Error)
  })
})
