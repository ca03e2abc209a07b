import { describe, expect, it } from 'vitest'
import type { JobView } from '../../../shared/model'
import { inWorkflowOrder } from './RunView'

const job = (key: string): JobView => ({
  id: 0,
  key,
  name: key,
  state: 'succeeded',
  needs: [],
  runsOn: [],
  nodeName: null,
  image: null,
  exitCode: null,
  reason: null,
  outputs: {},
  startedAt: null,
  finishedAt: null,
  steps: [],
})

describe('inWorkflowOrder', () => {
  it('keeps matrix instances beside their siblings, jobs in workflow order', () => {
    const order = inWorkflowOrder(
      ['gen', 'build (a)', 'lint', 'dynamic (x)', 'build (b)', 'dynamic (y)'].map(job),
    ).map((j) => j.key)
    expect(order).toEqual(['gen', 'build (a)', 'build (b)', 'lint', 'dynamic (x)', 'dynamic (y)'])
  })
})
