import { describe, expect, it } from 'vitest'
import type { FarmNode } from '../farm/farm-model'
import { parseWorkflow } from './parse-workflow'
import { containerOf, criticalPath, planWorkflow, runsOnLabels } from './plan'

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

describe('containerOf', () => {
  it('reads an image string, or the mapping with env, volumes, options and credentials, evaluated', async () => {
    const wf = await parseWorkflow(
      'ci.yml',
      `on: push
jobs:
  a:
    runs-on: linux
    container: debian:\${{ matrix.v }}
    steps: [{ run: x }]
  b:
    runs-on: linux
    container:
      image: registry.local/app:1
      env: { MODE: "\${{ matrix.v }}", N: 3 }
      volumes: [/srv/cache:/cache, "/etc/ssl:/ssl:ro"]
      options: --cpus 2
      credentials: { username: bot, password: "\${{ secrets.REG }}" }
    steps: [{ run: x }]
  c:
    runs-on: linux
    steps: [{ run: x }]
`,
    )
    const ctx = { matrix: { v: '12' }, secrets: { REG: 'pw' } }
    expect(containerOf(wf.jobs[0]!, ctx)).toEqual({
      image: 'debian:12',
      options: null,
      env: {},
      volumes: [],
      credentials: null,
    })
    expect(containerOf(wf.jobs[1]!, ctx)).toEqual({
      image: 'registry.local/app:1',
      options: '--cpus 2',
      env: { MODE: '12', N: '3' },
      volumes: ['/srv/cache:/cache', '/etc/ssl:/ssl:ro'],
      credentials: { username: 'bot', password: 'pw' },
    })
    expect(containerOf(wf.jobs[2]!, ctx).image).toBeNull()
  })
})
