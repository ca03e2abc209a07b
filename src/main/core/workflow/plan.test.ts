import { describe, expect, it } from 'vitest'
import type { FarmNode } from '../farm/farm-model'
import { parseWorkflow } from './parse-workflow'
import { criticalPath, planWorkflow, runsOnLabels } from './plan'

const node = (name: string, labels: string[]): FarmNode => ({
  name,
  host: 'h',
  port: 22,
  user: 'u',
  identityFile: null,
  executor: 'docker',
  labels: ['self-hosted', ...labels],
  slots: 1,
  defaultImage: null,
  source: null,
})
const farm = [node('n1', ['linux']), node('n2', ['linux', 'gpu'])]

describe('criticalPath', () => {
  it('is the longest chain of needs', () => {
    expect(
      criticalPath([
        { key: 'a', needs: [] },
        { key: 'b', needs: ['a'] },
        { key: 'c', needs: [] },
        { key: 'd', needs: ['b', 'c'] },
      ]),
    ).toEqual(['a', 'b', 'd'])
    expect(criticalPath([{ key: 'solo', needs: [] }])).toEqual(['solo'])
  })
})

describe('runsOnLabels', () => {
  it('reads a label, a list, and group/labels', () => {
    expect(runsOnLabels('linux')).toEqual(['linux'])
    expect(runsOnLabels(['linux', 'gpu'])).toEqual(['linux', 'gpu'])
    expect(runsOnLabels({ group: 'big', labels: ['linux'] })).toEqual(['group:big', 'linux'])
    expect(runsOnLabels({ labels: 'linux' })).toEqual(['linux'])
    expect(runsOnLabels(null)).toEqual([])
  })
})

describe('planWorkflow', () => {
  it('gives levels, the critical path, matrix instances and who can take each', async () => {
    const wf = await parseWorkflow(
      'ci.yml',
      `on: push
jobs:
  build:
    runs-on: linux
    steps: [{ run: make }]
  test:
    needs: build
    runs-on: \${{ matrix.where }}
    strategy:
      max-parallel: 1
      matrix: { where: [linux, gpu] }
    steps: [{ run: make test }]
  fan:
    needs: build
    runs-on: linux
    strategy:
      matrix: { n: "\${{ fromJSON(needs.build.outputs.list) }}" }
    steps: [{ run: echo }]
`,
    )
    const plan = planWorkflow(wf, farm, {})
    expect(plan.levels).toEqual([['build'], ['test', 'fan']])
    expect(plan.criticalPath).toEqual(['build', 'test'])
    const test = plan.jobs.find((j) => j.key === 'test')!
    expect(test).toMatchObject({ level: 1, failFast: true, maxParallel: 1 })
    expect(test.instances!.map((i) => [i.key, i.runsOn, i.nodes])).toEqual([
      [
        'test (linux)',
        ['linux'],
        [
          { name: 'n1', rejected: null },
          { name: 'n2', rejected: null },
        ],
      ],
      [
        'test (gpu)',
        ['gpu'],
        [
          { name: 'n1', rejected: 'lacks label gpu' },
          { name: 'n2', rejected: null },
        ],
      ],
    ])
    expect(plan.jobs.find((j) => j.key === 'fan')).toMatchObject({ instances: null, problem: null })
  })

  it('reports a matrix that cannot be expanded as the job’s problem', async () => {
    const wf = await parseWorkflow(
      'ci.yml',
      'on: push\njobs:\n  a:\n    runs-on: linux\n    strategy:\n      matrix: { os: [] }\n    steps: [{ run: x }]\n',
    )
    expect(planWorkflow(wf, farm, {}).jobs[0]).toMatchObject({
      instances: null,
      problem: 'matrix axis "os" has no values',
    })
  })
})
