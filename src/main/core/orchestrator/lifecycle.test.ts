import { describe, expect, it } from 'vitest'
import { attemptTransition, groupTransition, IllegalTransitionError } from './lifecycle'

describe('lifecycle', () => {
  it('lets an attempt end once, in any of its end states, and never start again', () => {
    for (const end of ['succeeded', 'failed', 'cancelled', 'preempted', 'lost'] as const)
      expect(() => attemptTransition(1, 'running', end)).not.toThrow()
    expect(() => attemptTransition(4, 'preempted', 'running')).toThrow(
      new IllegalTransitionError('attempt 4 cannot go from preempted to running: preempted is final'),
    )
  })

  it("moves a job's group forward only: a done group never runs again", () => {
    expect(() => groupTransition('build', 'waiting', 'running')).not.toThrow()
    expect(() => groupTransition('build', 'acquiring', 'done')).not.toThrow()
    expect(() => groupTransition('build', 'running', 'acquiring')).toThrow(
      'job group build cannot go from running to acquiring; from running it goes to done',
    )
    expect(() => groupTransition('build', 'done', 'running')).toThrow(/done is final/)
  })
})
