import { describe, expect, it } from 'vitest'
import { parseCheckpoint, type JobCheckpoint } from './job-checkpoint'

const good: JobCheckpoint = {
  v: 1,
  step: 2,
  nonce: '0a1b2c',
  startedAt: 1000,
  steps: { build: { outputs: { v: '1' }, outcome: 'success', conclusion: 'success' } },
  addedEnv: { FROM_STEP: 'x' },
  addedPath: ['/opt/bin'],
  jobFailed: false,
  cancelled: false,
  failure: null,
  failedImageId: null,
  masks: ['hidden'],
}

describe('parseCheckpoint', () => {
  it('reads back what was written', () => {
    expect(parseCheckpoint(JSON.stringify(good))).toEqual(good)
  })

  it('says what is wrong with a damaged one, field by field', () => {
    expect(() => parseCheckpoint('{"v":1,')).toThrow(/not JSON/)
    expect(() => parseCheckpoint('{"v":2}')).toThrow(/not a version 1 checkpoint/)
    expect(() =>
      parseCheckpoint(JSON.stringify({ ...good, step: -1, addedEnv: { A: 1 }, masks: 'x' })),
    ).toThrow("the step's state.json has a bad step, addedEnv, masks")
  })
})
