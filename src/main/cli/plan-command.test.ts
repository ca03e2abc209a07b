import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { main } from './main'

async function run(argv: string[]) {
  let out = ''
  let err = ''
  const code = await main(
    argv,
    { out: (t) => (out += t), err: (t) => (err += t), color: false },
    new AbortController().signal,
  )
  return { code, out, err }
}

describe('yardmaster plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ym-plan-'))
  const farm = join(dir, 'farm.yml')
  writeFileSync(
    farm,
    'knownHosts: /dev/null\nnodes:\n  - { name: a, host: 10.0.0.1, user: u, labels: [linux] }\n  - { name: b, host: 10.0.0.2, user: u, labels: [gpu] }\n',
  )
  const wf = join(dir, 'ci.yml')
  writeFileSync(
    wf,
    'on:\n  push: { branches: [main, release/*], paths: [src/**] }\n  schedule: [{ cron: "0 2 * * 1" }]\n  workflow_dispatch:\n    inputs:\n      level: { type: choice, options: [x, y], default: x }\njobs:\n  build:\n    runs-on: linux\n    steps: [{ run: make }]\n  gpu:\n    needs: build\n    runs-on: [linux, gpu]\n    steps: [{ run: make }]\n',
  )

  it('prints levels, the critical path and why nodes cannot take a job; exit 2 when none can', async () => {
    const r = await run(['plan', wf, '--farm', farm])
    expect(r.code).toBe(2)
    expect(r.out).toContain(
      'on: push (branches: main, release/*; paths: src/**), schedule (0 2 * * 1), workflow_dispatch',
    )
    expect(r.out).toContain('  input level: choice = x (x | y)')
    expect(r.out).toContain('  1. build\n  2. gpu')
    expect(r.out).toContain('critical path: build -> gpu (2 jobs)')
    expect(r.out).toContain('  runs-on [linux] -> a  (not b: lacks label linux)')
    expect(r.out).toContain(
      '  runs-on [linux, gpu] -> no node can take it  (not a: lacks label gpu; b: lacks label linux)',
    )
  })

  it('prints the plan as JSON with --json', async () => {
    const r = await run(['plan', wf, '--farm', farm, '--json'])
    const plan = JSON.parse(r.out) as { levels: string[][]; jobs: Array<{ key: string }> }
    expect(plan.levels).toEqual([['build'], ['gpu']])
    expect(plan.jobs.map((j) => j.key)).toEqual(['build', 'gpu'])
  })

  it('refuses bad input values and invalid workflows with exit 2', async () => {
    expect((await run(['plan', wf, '--farm', farm, '--input', 'level=z'])).err).toContain(
      'input "level" must be one of: x, y (not "z")',
    )
    const bad = join(dir, 'bad.yml')
    writeFileSync(bad, 'on: push\njobs: {}\n')
    const r = await run(['plan', bad, '--farm', farm])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`${bad}:2:7: a workflow needs at least one job (jobs)`)
    expect((await run(['plan'])).code).toBe(2)
  })
})

describe('yardmaster validate', () => {
  it('says ok per file, or lists every problem as file:line:col; exit 2 on any problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ym-validate-'))
    const good = join(dir, 'good.yml')
    const bad = join(dir, 'bad.yml')
    writeFileSync(good, 'on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{ run: echo }]\n')
    writeFileSync(bad, 'on: push\njobs:\n  a:\n    runs_on: x\n    steps: [{ run: echo }]\n')
    const ok = await run(['validate', good])
    expect(ok).toMatchObject({ code: 0, out: `${good}: ok (1 job)\n` })
    const r = await run(['validate', good, bad])
    expect(r.code).toBe(2)
    expect(r.err).toBe(`${bad}:4:5: unknown key "runs_on"; did you mean "runs-on"? (jobs.a.runs_on)\n`)
    expect((await run(['validate'])).code).toBe(2)
  })
})
