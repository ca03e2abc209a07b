/**
 * The workflow parser: GitHub's parser and schema underneath, our paths, suggestions, cycle
 * paths and refusals on top. Every problem comes with its exact position and field path.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatProblem, InvalidSourceError, type SourceProblem } from '../source/source-error'
import { literal } from './actions-syntax'
import { evaluateText, evaluateToken, type ExpressionContexts } from './expressions'
import { levels } from './job-graph'
import { loadWorkflow, parseWorkflow, selectJob } from './parse-workflow'

const FIXTURES = resolve(__dirname, '../../../../test/fixtures/workflows')

/** The problems parseWorkflow reports for `text`, or fails the test when it parses. */
async function problemsOf(text: string, file = 'wf.yml'): Promise<SourceProblem[]> {
  try {
    await parseWorkflow(file, text)
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidSourceError)
    expect((e as InvalidSourceError).kind).toBe('workflow')
    return (e as InvalidSourceError).problems
  }
  throw new Error('expected the workflow to be rejected')
}

/** `line:col: message (path)` for each problem: what a user sees, minus the file name. */
async function where(text: string): Promise<string[]> {
  return (await problemsOf(text)).map((p) => formatProblem({ ...p, file: '' }).slice(1))
}

const STEP = '    steps:\n      - run: echo\n'

describe('parseWorkflow: the model', () => {
  it('reads jobs, needs, defaults and steps, keeping expressions as tokens', async () => {
    const wf = await parseWorkflow(
      '/repo/.github/workflows/ci.yml',
      `name: CI
on:
  workflow_dispatch:
    inputs:
      level: { type: choice, options: [low, high], default: low, required: true }
      dry: { type: boolean }
  push:
env: { A: "\${{ github.event_name }}" }
defaults: { run: { shell: bash, working-directory: src } }
jobs:
  build:
    runs-on: [linux, "\${{ inputs.level }}"]
    outputs: { v: "\${{ steps.s.outputs.v }}" }
    steps:
      - id: s
        run: |
          make all
          make check
      - name: Named
        if: failure()
        shell: sh
        working-directory: sub
        continue-on-error: true
        run: echo \${{ env.A }}
  test:
    needs: build
    if: github.ref == 'refs/heads/main'
    runs-on: linux
    steps:
      - uses: actions/checkout@v4
`,
    )
    expect(wf).toMatchObject({
      file: '/repo/.github/workflows/ci.yml',
      name: 'CI',
      events: ['workflow_dispatch', 'push'],
    })
    expect(wf.defaults).toEqual({ shell: 'bash', workingDirectory: 'src' })
    expect(wf.inputs).toEqual([
      {
        name: 'level',
        type: 'choice',
        required: true,
        default: 'low',
        options: ['low', 'high'],
        description: null,
      },
      { name: 'dry', type: 'boolean', required: false, default: null, options: [], description: null },
    ])
    const [build, test] = wf.jobs
    expect(build).toMatchObject({ key: 'build', name: 'build', needs: [], if: 'success()', line: 11, col: 3 })
    expect(evaluateToken(build!.runsOn, { inputs: { level: 'high' } })).toEqual(['linux', 'high'])
    expect(build!.steps.map((s) => [s.index, s.id, s.contextKey, s.name, s.if, s.shell])).toEqual([
      [0, 's', 's', 'Run make all', 'success()', null],
      [1, null, '__1', 'Named', 'failure()', 'sh'],
    ])
    expect(literal(build!.steps[0]!.run!)).toBe('make all\nmake check\n')
    expect(evaluateToken(build!.steps[1]!.run, { env: { A: 'x' } })).toBe('echo x')
    expect(literal(build!.steps[1]!.continueOnError!)).toBe(true)
    expect(test).toMatchObject({ needs: ['build'], if: "success() && (github.ref == 'refs/heads/main')" })
    expect(test!.steps[0]).toMatchObject({
      uses: 'actions/checkout@v4',
      name: 'Run actions/checkout@v4',
      run: null,
    })
  })

  it('names a step whose script has expressions after its source text', async () => {
    const wf = await parseWorkflow(
      'w.yml',
      `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \${{ github.sha }}\n`,
    )
    expect(wf.jobs[0]!.steps[0]!.name).toBe('Run echo ${{ github.sha }}')
  })

  it("reads the workflow's default priority from env.YARDMASTER_PRIORITY, null without one", async () => {
    const text = (env: string) => `on: push\n${env}jobs:\n  a:\n    runs-on: x\n${STEP}`
    expect((await parseWorkflow('/w.yml', text('env:\n  YARDMASTER_PRIORITY: high\n'))).priority).toBe('high')
    expect((await parseWorkflow('/w.yml', text('env:\n  OTHER: 1\n'))).priority).toBeNull()
    expect((await parseWorkflow('/w.yml', text(''))).priority).toBeNull()
    const rule =
      'must be one of hotfix, high, normal, low, written as it is (not an expression): ' +
      "the class this workflow's runs are queued in when a trigger does not choose one"
    expect(await where(text('env:\n  YARDMASTER_PRIORITY: urgent\n'))).toEqual([
      `3:24: ${rule} (env.YARDMASTER_PRIORITY)`,
    ])
    expect(await where(text('env:\n  YARDMASTER_PRIORITY: ${{ vars.P }}\n'))).toEqual([
      `3:24: ${rule} (env.YARDMASTER_PRIORITY)`,
    ])
  })

  it('gives a block scalar with expressions its YAML value, as GitHub does: no indentation, folded, chomped', async () => {
    const wf = await parseWorkflow(
      '/w.yml',
      `on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: |
          echo "t \${{ secrets.T }}"
            indented '\${{ inputs.n }}' {braces}
          exit 3
      - run: >-
          folded \${{ secrets.T }}
          more
      - run: |-
          \${{ secrets.T }}
      - run: |
          \${{ secrets.T }}
      - run: |
          plain
`,
    )
    const contexts = { secrets: { T: 'v' }, inputs: { n: "it's" } } as unknown as ExpressionContexts
    expect(wf.jobs[0]!.steps.map((s) => evaluateText(s.run, contexts))).toEqual([
      `echo "t v"\n  indented 'it's' {braces}\nexit 3\n`,
      'folded v more',
      'v',
      'v\n',
      'plain\n',
    ])
  })

  it('defaults the workflow name to the file name', async () => {
    const wf = await parseWorkflow('/x/deploy.yml', `on: push\njobs:\n  a:\n    runs-on: x\n${STEP}`)
    expect(wf.name).toBe('deploy.yml')
  })
})

describe('parseWorkflow: problems, with exact position and path', () => {
  it('requires "on" and "jobs"', async () => {
    expect(await where('name: x\n')).toEqual([
      '1:1: "on" is required here (on)',
      '1:1: "jobs" is required here (jobs)',
    ])
  })

  it('suggests the key that was meant, at each level', async () => {
    expect(await where(`on: push\njbos: {}\n`)).toContain(
      '2:1: unknown key "jbos"; did you mean "jobs"? (jbos)',
    )
    expect(await where(`on: push\njobs:\n  a:\n    runs_on: x\n${STEP}`)).toEqual([
      '4:5: unknown key "runs_on"; did you mean "runs-on"? (jobs.a.runs_on)',
    ])
    expect(
      await where(`on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n        shel: sh\n`),
    ).toEqual(['7:9: unknown key "shel"; did you mean "shell"? (jobs.a.steps[0].shel)'])
  })

  it('reports unknown needs with a suggestion, else the list of jobs', async () => {
    const two = (need: string) =>
      `on: push\njobs:\n  build:\n    runs-on: x\n${STEP}  test:\n    needs: ${need}\n    runs-on: x\n${STEP}`
    expect(await where(two('biuld'))).toEqual([
      '8:12: job "test" needs unknown job "biuld"; did you mean "build"? (jobs.test.needs)',
    ])
    expect(await where(two('[build, deploy]'))).toEqual([
      '8:20: job "test" needs unknown job "deploy"; the jobs are: build, test (jobs.test.needs[1])',
    ])
  })

  it('reports a cycle as the path around it, at the need on the cycle', async () => {
    const text = `on: push\njobs:\n  a:\n    needs: [z, b]\n    runs-on: x\n${STEP}  b:\n    needs: a\n    runs-on: x\n${STEP}  z:\n    runs-on: x\n${STEP}`
    expect(await where(text)).toEqual(['4:16: dependency cycle: a -> b -> a (jobs.a.needs)'])
  })

  it('refuses actions other than the built-ins, naming them', async () => {
    expect(
      await where(
        `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: docker/build-push-action@v6\n`,
      ),
    ).toEqual([
      '6:15: action "docker/build-push-action@v6" is not available: Yardmaster runs only its built-in actions (actions/checkout, actions/upload-artifact, actions/download-artifact, actions/cache) and "run:" steps (jobs.a.steps[0].uses)',
    ])
  })

  it('refuses what it does not run yet: services and reusable workflows', async () => {
    const p = await where(
      `on: push\njobs:\n  a:\n    runs-on: x\n    services:\n      db: { image: postgres }\n${STEP}  b:\n    uses: ./.github/workflows/other.yml\n`,
    )
    expect(p.some((m) => m.includes('services'))).toBe(false) // services run (see the lab tests)
    expect(p).toContain('10:5: calling a reusable workflow (job "uses") is not supported yet (jobs.b.uses)')
  })

  it('refuses unknown shells with a suggestion; accepts bash, sh, python and {0} templates', async () => {
    const shell = (s: string) =>
      `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n        shell: ${s}\n`
    expect(await where(shell('bsh'))).toEqual([
      '7:16: shell "bsh" is not supported; use bash, sh, python, or a command with {0} for the script file (did you mean "bash"?) (jobs.a.steps[0].shell)',
    ])
    for (const ok of ['bash', 'sh', 'python', '"perl {0}"'])
      await expect(parseWorkflow('w.yml', shell(ok))).resolves.toBeTruthy()
  })

  it('refuses unknown contexts and functions in expressions, at the expression', async () => {
    expect(
      await where(`on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \${{ foo.bar }}\n`),
    ).toEqual([
      '6:19: unknown context "foo"; the contexts are: github, env, vars, secrets, inputs, job, jobs, steps, runner, strategy, matrix, needs (jobs.a.steps[0].run)',
    ])
    expect(await where(`on: push\njobs:\n  a:\n    runs-on: \${{ secrets.X }}\n${STEP}`)).toEqual([
      '4:14: the "secrets" context is not available here (jobs.a.runs-on)',
    ])
    expect(
      await where(
        `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \${{ toJson2(github) }}\n`,
      ),
    ).toEqual(['6:19: unknown function "toJson2"; did you mean "toJSON"? (jobs.a.steps[0].run)'])
  })

  it('says what a wrongly typed value should be, rather than calling it an unknown key', async () => {
    expect(await where(`on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 30m\n${STEP}`)).toEqual([
      '5:22: "timeout-minutes" must be a number of minutes (or an expression), not "30m" (jobs.a.timeout-minutes)',
    ])
    expect(
      await where(`on: push\njobs:\n  a:\n    runs-on: x\n    continue-on-error: "true"\n${STEP}`),
    ).toEqual([
      '5:24: "continue-on-error" must be true, false or an expression, not "true" (a quoted string; remove the quotes) (jobs.a.continue-on-error)',
    ])
  })

  it('says a step has run or uses, not both, and reports every cycle and unknown need at once', async () => {
    expect(
      await where(
        `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/checkout@v4\n        run: make\n`,
      ),
    ).toEqual(['7:9: a step has either "run:" or "uses:", not both (jobs.a.steps[0].run)'])
    const jobs = (k: string, needs: string) => `  ${k}:\n    needs: ${needs}\n    runs-on: x\n${STEP}`
    const text = `on: push\njobs:\n${jobs('a', '[b, setup]')}${jobs('b', 'a')}${jobs('x', 'y')}${jobs('y', 'x')}`
    expect(await where(text)).toEqual([
      '4:13: dependency cycle: a -> b -> a (jobs.a.needs)',
      '4:16: job "a" needs unknown job "setup"; the jobs are: a, b, x, y (jobs.a.needs[1])',
      '14:12: dependency cycle: x -> y -> x (jobs.x.needs)',
    ])
  })

  it('requires steps, non-empty, and runs-on labels that are not empty', async () => {
    expect(await where('on: push\njobs:\n  a:\n    runs-on: x\n')).toEqual([
      '3:3: job "a" has no "steps:"; give it at least one step (jobs.a.steps)',
    ])
    expect(await where('on: push\njobs:\n  a:\n    runs-on: x\n    steps: []\n')).toEqual([
      '5:12: job "a" has an empty list of steps (jobs.a.steps)',
    ])
    expect(await where(`on: push\njobs:\n  a:\n    runs-on: ""\n${STEP}`)).toEqual([
      '4:14: a value is required here (jobs.a.runs-on)',
    ])
  })

  it('reports YAML errors on their first line only, and nothing else', async () => {
    expect(await where('on: push\njobs:\n  a:\n    runs-on: [x\n')).toHaveLength(1)
  })

  it('reports every problem of a file in one pass, sorted by position, with a count', async () => {
    const text = `on: push\njobs:\n  a:\n    runson: x\n${STEP}  b:\n    needs: c\n    runs-on: x\n    steps:\n      - uses: foo/bar@v1\n`
    const problems = await problemsOf(text)
    expect(problems.map((p) => `${p.line}:${p.col}`)).toEqual(['4:5', '8:12', '11:15'])
    try {
      await parseWorkflow('wf.yml', text)
    } catch (e) {
      expect((e as Error).message.split('\n')[0]).toBe('Workflow is invalid (3 problems):')
    }
  })
})

describe('loadWorkflow', () => {
  let dir: string
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('reads a file and parses it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ym-wf-'))
    const file = join(dir, 'ci.yml')
    writeFileSync(file, `on: push\njobs:\n  a:\n    runs-on: x\n${STEP}`)
    const wf = await loadWorkflow(file)
    expect(wf.file).toBe(file)
    expect(wf.name).toBe('ci.yml')
  })

  it('reports a missing file as a problem at 1:1', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ym-wf-'))
    const file = join(dir, 'missing.yml')
    const e = await loadWorkflow(file).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(InvalidSourceError)
    const [p, ...rest] = (e as InvalidSourceError).problems
    expect(rest).toEqual([])
    expect(p).toMatchObject({ file, line: 1, col: 1, path: '' })
    expect(p!.message).toMatch(/^cannot read the workflow: ENOENT: no such file or directory/)
  })
})

describe('workflow corpus (test/fixtures/workflows)', () => {
  const valid = readdirSync(join(FIXTURES, 'valid'))
    .filter((f) => f.endsWith('.yml'))
    .sort()
  const invalid = readdirSync(join(FIXTURES, 'invalid'))
    .filter((f) => f.endsWith('.yml'))
    .sort()

  it('has a corpus large enough to matter', () => {
    expect(valid.length).toBeGreaterThanOrEqual(15)
    expect(invalid.length).toBeGreaterThanOrEqual(25)
  })

  /** `# levels: a | b c | d` declares the expected parallel levels of a valid workflow. */
  it.each(valid)('valid/%s parses, and its jobs fall into the declared levels', async (name) => {
    const file = join(FIXTURES, 'valid', name)
    const header = readFileSync(file, 'utf8').match(/^# levels: (.*)$/m)
    expect(header, `${name} needs a "# levels:" line`).not.toBeNull()
    const expected = header![1]!.split('|').map((l) => l.trim().split(/\s+/))
    const wf = await loadWorkflow(file)
    expect(wf.jobs.length).toBeGreaterThan(0)
    expect(levels(wf.jobs)).toEqual(expected)
    for (const job of wf.jobs) {
      expect(job.runsOn).not.toBeNull()
      expect(job.steps.length).toBeGreaterThan(0)
      job.steps.forEach((s, i) => expect(s.index).toBe(i))
    }
  })

  it.each(invalid)('invalid/%s reports exactly the problems it declares', async (name) => {
    const file = join(FIXTURES, 'invalid', name)
    const expected = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('# expect: '))
      .map((l) => `${file}:${l.slice('# expect: '.length)}`)
    expect(expected.length, `${name} needs at least one "# expect:" line`).toBeGreaterThan(0)
    let problems: SourceProblem[] = []
    try {
      await loadWorkflow(file)
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidSourceError)
      problems = (e as InvalidSourceError).problems
    }
    expect(problems.map(formatProblem).sort()).toEqual(expected.sort())
    expect(problems.every((p) => p.file === file && basename(p.file) === name)).toBe(true)
  })
})

describe('selectJob (--job)', () => {
  it('keeps the job and everything it needs, in file order', async () => {
    const wf = await parseWorkflow(
      'w.yml',
      `on: push\njobs:\n  a:\n    runs-on: x\n${STEP}  b:\n    needs: a\n    runs-on: x\n${STEP}  c:\n    runs-on: x\n${STEP}  d:\n    needs: [b]\n    runs-on: x\n${STEP}`,
    )
    expect(selectJob(wf, 'd').jobs.map((j) => j.key)).toEqual(['a', 'b', 'd'])
    expect(selectJob(wf, 'c').jobs.map((j) => j.key)).toEqual(['c'])
    expect(selectJob(wf, undefined)).toBe(wf)
    expect(() => selectJob(wf, 'dd')).toThrow('--job dd: no such job; did you mean "d"?')
    expect(() => selectJob(wf, 'deploy')).toThrow('--job deploy: no such job; the jobs are: a, b, c, d')
  })
})
