/**
 * Reads a workflow in GitHub Actions syntax with GitHub's own parser, then adds what it leaves
 * to us: field paths and "did you mean" on every problem, dependency cycles as their path, and
 * refusal (at validation time, never at run time) of what Yardmaster does not run. Every problem
 * is reported in one pass.
 */
import { readFile } from 'node:fs/promises'
import { isScalar, LineCounter, parseDocument, visit } from 'yaml'
import { InvalidSourceError, type SourceProblem } from '../source/source-error'
import { suggest } from '../source/yaml-source'
import {
  entries,
  isMapping,
  isSequence,
  literal,
  parseActionsSyntax,
  positionOf,
  type MappingToken,
  type TemplateToken,
} from './actions-syntax'
import { findCycle } from './job-graph'
import { isPriority, PRIORITIES, type Priority } from '../scheduler/priority'
import type { RunDefaults, Workflow, WorkflowInput, WorkflowJob, WorkflowStep } from './workflow-model'

/** Actions Yardmaster provides itself; any other `uses:` is refused. */
export const BUILTIN_ACTIONS = [
  'actions/checkout',
  'actions/upload-artifact',
  'actions/download-artifact',
  'actions/cache',
]
export const SHELLS = ['bash', 'sh', 'python']

const KEYS: Record<'workflow' | 'job' | 'step', string[]> = {
  workflow: ['name', 'run-name', 'on', 'env', 'defaults', 'concurrency', 'permissions', 'jobs'],
  job: [
    'name',
    'needs',
    'if',
    'runs-on',
    'env',
    'defaults',
    'container',
    'services',
    'strategy',
    'outputs',
    'timeout-minutes',
    'continue-on-error',
    'concurrency',
    'permissions',
    'environment',
    'steps',
    'uses',
    'with',
    'secrets',
  ],
  step: [
    'id',
    'name',
    'if',
    'run',
    'uses',
    'with',
    'env',
    'shell',
    'working-directory',
    'continue-on-error',
    'timeout-minutes',
  ],
}
const CONTEXTS = [
  'github',
  'env',
  'vars',
  'secrets',
  'inputs',
  'job',
  'jobs',
  'steps',
  'runner',
  'strategy',
  'matrix',
  'needs',
]
const FUNCTIONS = [
  'contains',
  'startsWith',
  'endsWith',
  'format',
  'join',
  'toJSON',
  'fromJSON',
  'hashFiles',
  'success',
  'failure',
  'always',
  'cancelled',
]

/** What GitHub expects of keys whose values are often mistyped. */
const EXPECTED: Record<string, string> = {
  'timeout-minutes': 'a number of minutes (or an expression)',
  'continue-on-error': 'true, false or an expression',
  'fail-fast': 'true, false or an expression',
  'max-parallel': 'a number (or an expression)',
  'cancel-in-progress': 'true, false or an expression',
  required: 'true or false',
  type: 'one of string, boolean, choice, number, environment',
}

/** The key whose scalar value starts at line:col in the YAML, if a value starts there. */
function mappingValueAt(text: string, line: number, col: number): { key: string; quoted: boolean } | null {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  const offset = (lines.lineStarts[line - 1] ?? 0) + col - 1
  let found: { key: string; quoted: boolean } | null = null
  visit(doc, {
    Pair(_, pair) {
      const value = pair.value as { range?: [number, number, number] } | null
      if (found === null && isScalar(pair.value) && value?.range?.[0] === offset && isScalar(pair.key)) {
        const type = (pair.value as { type?: string }).type
        found = { key: String(pair.key.value), quoted: type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE' }
        return visit.BREAK
      }
      return undefined
    },
  })
  return found
}

function notTogether(key: string, level: 'workflow' | 'job' | 'step'): string {
  if (level === 'step' && (key === 'run' || key === 'uses'))
    return 'a step has either "run:" or "uses:", not both'
  if (level === 'job') return `"${key}" cannot be used in a job that calls a reusable workflow ("uses:")`
  return `"${key}" is not allowed here`
}

const NOT_YET: Record<string, string> = {
  uses: 'calling a reusable workflow (job "uses") is not supported yet',
}

export async function loadWorkflow(file: string): Promise<Workflow> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new InvalidSourceError('workflow', [
      { file, line: 1, col: 1, path: '', message: `cannot read the workflow: ${(e as Error).message}` },
    ])
  }
  return parseWorkflow(file, text)
}

export async function parseWorkflow(file: string, text: string): Promise<Workflow> {
  const syntax = await parseActionsSyntax(file, text)
  const problems: SourceProblem[] = tidy(syntax.problems.map((p) => explain(p, syntax.root, text)))
  const report = (token: TemplateToken | undefined, path: string, message: string) => {
    const at = positionOf(token)
    problems.push({ file, line: at.line, col: at.col, path, message })
  }
  const root = syntax.root
  if (!root) {
    if (!problems.length) report(undefined, '', 'a workflow must be a mapping with "on:" and "jobs:"')
    throw new InvalidSourceError('workflow', sortProblems(problems))
  }

  const top = new Map(entries(root).map((e) => [e.key, e]))
  const jobsEntry = top.get('jobs')
  if (jobsEntry && isMapping(jobsEntry.value) && entries(jobsEntry.value).length === 0) {
    dropWhere(problems, (p) => /at least one job with(out| no) dependencies/i.test(p.message))
    report(jobsEntry.value, 'jobs', 'a workflow needs at least one job')
  }
  const defaults = readDefaults(top.get('defaults')?.value, 'defaults', report)
  const priority = readPriority(top.get('env')?.value, report)
  const jobs: WorkflowJob[] = []
  const needsTokens = new Map<string, TemplateToken>()
  for (const { key, keyToken, value } of entries(top.get('jobs')?.value)) {
    jobs.push(readJob(key, keyToken, value, syntax.template, report))
    const needs = entries(value).find((e) => e.key === 'needs')?.value
    if (needs) needsTokens.set(key, needs)
  }
  // GitHub's converter reports dependency problems vaguely, stops at the first, and blames jobs
  // near a broken one ("creates a cycle", "at least one job with no dependencies"). Ours are
  // exact and complete, so its go.
  dropWhere(problems, (p) =>
    /at least one job with(out| no) dependencies|creates a cycle|depends on unknown job/i.test(p.message),
  )
  checkUnknownNeeds(
    jobs,
    [...entries(jobsEntry?.value)].map((e) => e.key),
    needsTokens,
    report,
  )
  checkCycles(jobs, needsTokens, report)
  if (problems.length) throw new InvalidSourceError('workflow', sortProblems(tidy(problems)))

  const nameValue = literal(top.get('name')?.value)
  return {
    file,
    name: typeof nameValue === 'string' && nameValue ? nameValue : (file.split('/').pop() ?? file),
    env: top.get('env')?.value ?? null,
    concurrency: top.get('concurrency')?.value ?? null,
    defaults,
    events: readEvents(top.get('on')?.value),
    triggers: JSON.parse(JSON.stringify(syntax.template?.events ?? {})) as Record<string, unknown>,
    inputs: readInputs(top.get('on')?.value),
    jobs,
    priority,
  }
}

/** The workflow's default priority class, from `env.YARDMASTER_PRIORITY`; null when it sets none. */
function readPriority(env: TemplateToken | undefined, report: Report): Priority | null {
  const entry = entries(env).find((e) => e.key === PRIORITY_VARIABLE)
  if (!entry) return null
  const value = literal(entry.value)
  if (isPriority(value)) return value
  report(
    entry.value,
    `env.${PRIORITY_VARIABLE}`,
    `must be one of ${PRIORITIES.join(', ')}, written as it is (not an expression): ` +
      "the class this workflow's runs are queued in when a trigger does not choose one",
  )
  return null
}

/** Workflow-level env variable that sets the default priority of the workflow's runs. */
export const PRIORITY_VARIABLE = 'YARDMASTER_PRIORITY'

type Report = (token: TemplateToken | undefined, path: string, message: string) => void

function readJob(
  key: string,
  keyToken: TemplateToken,
  value: TemplateToken,
  template: Awaited<ReturnType<typeof parseActionsSyntax>>['template'],
  report: Report,
): WorkflowJob {
  const path = `jobs.${key}`
  const fields = new Map(entries(value).map((e) => [e.key, e]))
  for (const [k, message] of Object.entries(NOT_YET)) {
    const f = fields.get(k)
    if (f) report(f.keyToken, `${path}.${k}`, message)
  }
  const stepsField = fields.get('steps')
  // (A job that is not a mapping at all is reported by GitHub's schema.)
  if (!fields.has('uses') && isMapping(value)) {
    if (!stepsField)
      report(keyToken, `${path}.steps`, `job "${key}" has no "steps:"; give it at least one step`)
    else if (isSequence(stepsField.value) && stepsField.value.count === 0) {
      report(stepsField.value, `${path}.steps`, `job "${key}" has an empty list of steps`)
    }
  }
  const runsOnField = fields.get('runs-on')
  if (runsOnField) {
    const labels = isSequence(runsOnField.value) ? [...runsOnField.value] : [runsOnField.value]
    // (An empty label is reported by GitHub's schema, at the label.)
    if (labels.length === 0)
      report(runsOnField.value, `${path}.runs-on`, '"runs-on" needs at least one label')
  }
  const converted = template?.jobs.find((j) => j.id.value === key)
  const steps = entries(value).find((e) => e.key === 'steps')?.value
  const stepTokens = steps && isSequence(steps) ? [...steps] : []
  const convertedSteps = converted && 'steps' in converted ? converted.steps : []
  const nameLiteral = literal(fields.get('name')?.value)
  const at = positionOf(keyToken)
  return {
    key,
    name: typeof nameLiteral === 'string' ? nameLiteral : key,
    nameToken: fields.get('name')?.value ?? null,
    needs: converted?.needs?.map((n) => n.value) ?? readNeeds(fields.get('needs')?.value),
    if: converted?.if?.expression ?? 'success()',
    runsOn: fields.get('runs-on')?.value ?? null,
    env: fields.get('env')?.value ?? null,
    container: fields.get('container')?.value ?? null,
    services: fields.get('services')?.value ?? null,
    strategy: fields.get('strategy')?.value ?? null,
    concurrency: fields.get('concurrency')?.value ?? null,
    outputs: fields.get('outputs')?.value ?? null,
    continueOnError: fields.get('continue-on-error')?.value ?? null,
    timeoutMinutes: fields.get('timeout-minutes')?.value ?? null,
    defaults: readDefaults(fields.get('defaults')?.value, `${path}.defaults`, report),
    steps: stepTokens.map((t, i) => readStep(t, i, `${path}.steps[${i}]`, convertedSteps[i], report)),
    line: at.line,
    col: at.col,
  }
}

function readStep(
  token: TemplateToken,
  index: number,
  path: string,
  converted: { if?: { expression: string } } | undefined,
  report: Report,
): WorkflowStep {
  const fields = new Map(entries(token).map((e) => [e.key, e]))
  const id = literal(fields.get('id')?.value)
  const usesEntry = fields.get('uses')
  const uses = typeof literal(usesEntry?.value) === 'string' ? String(literal(usesEntry?.value)) : null
  if (uses !== null) {
    const name = uses.split('@')[0] ?? uses
    if (!BUILTIN_ACTIONS.includes(name)) {
      report(
        usesEntry?.value,
        `${path}.uses`,
        `action "${uses}" is not available: Yardmaster runs only its built-in actions (${BUILTIN_ACTIONS.join(', ')}) and "run:" steps`,
      )
    }
  }
  const shellEntry = fields.get('shell')
  const shell = literal(shellEntry?.value)
  if (typeof shell === 'string') checkShell(shell, shellEntry?.value, `${path}.shell`, report)
  const run = fields.get('run')?.value ?? null
  // The text as written, also when it holds expressions (then the token keeps it as `source`).
  const runText = literal(run ?? undefined) ?? (run as { source?: string } | null)?.source
  const nameLiteral = literal(fields.get('name')?.value)
  const firstLine = typeof runText === 'string' ? (runText.trim().split('\n')[0] ?? '') : (uses ?? '')
  const at = positionOf(token)
  return {
    index,
    id: typeof id === 'string' ? id : null,
    contextKey: typeof id === 'string' ? id : `__${index}`,
    name: typeof nameLiteral === 'string' ? nameLiteral : `Run ${firstLine || '(script)'}`,
    nameToken: fields.get('name')?.value ?? null,
    if: converted?.if?.expression ?? 'success()',
    run,
    uses,
    with: fields.get('with')?.value ?? null,
    env: fields.get('env')?.value ?? null,
    shell: typeof shell === 'string' ? shell : null,
    workingDirectory: fields.get('working-directory')?.value ?? null,
    continueOnError: fields.get('continue-on-error')?.value ?? null,
    timeoutMinutes: fields.get('timeout-minutes')?.value ?? null,
    line: at.line,
    col: at.col,
  }
}

function checkShell(shell: string, token: TemplateToken | undefined, path: string, report: Report): void {
  // An empty shell is reported by GitHub's schema already.
  if (!shell || SHELLS.includes(shell) || shell.includes('{0}')) return
  const guess = suggest(shell, SHELLS)
  report(
    token,
    path,
    `shell "${shell}" is not supported; use ${SHELLS.join(', ')}, or a command with {0} for the script file` +
      (guess ? ` (did you mean "${guess}"?)` : ''),
  )
}

function readNeeds(token: TemplateToken | undefined): string[] {
  if (!token) return []
  if (isSequence(token)) return [...token].map((t) => String(literal(t) ?? ''))
  const v = literal(token)
  return v === undefined || v === null ? [] : [String(v)]
}

function readDefaults(token: TemplateToken | undefined, path: string, report: Report): RunDefaults {
  const run = entries(token).find((e) => e.key === 'run')?.value
  const f = new Map(entries(run).map((e) => [e.key, literal(e.value)]))
  const shell = f.get('shell')
  if (typeof shell === 'string') {
    checkShell(shell, entries(run).find((e) => e.key === 'shell')?.value, `${path}.run.shell`, report)
  }
  const wd = f.get('working-directory')
  return {
    shell: typeof shell === 'string' ? shell : null,
    workingDirectory: typeof wd === 'string' ? wd : null,
  }
}

function readEvents(token: TemplateToken | undefined): string[] {
  if (!token) return []
  if (isSequence(token)) return [...token].map((t) => String(literal(t)))
  if (isMapping(token)) return entries(token).map((e) => e.key)
  const v = literal(token)
  return typeof v === 'string' ? [v] : []
}

function readInputs(on: TemplateToken | undefined): WorkflowInput[] {
  const out: WorkflowInput[] = []
  for (const event of ['workflow_dispatch', 'workflow_call']) {
    const inputs = entries(entries(on).find((e) => e.key === event)?.value).find(
      (e) => e.key === 'inputs',
    )?.value
    for (const { key, value } of entries(inputs)) {
      if (out.some((i) => i.name === key)) continue
      const f = new Map(entries(value).map((e) => [e.key, e.value]))
      const type = literal(f.get('type'))
      const options = f.get('options')
      const dflt = literal(f.get('default'))
      const description = literal(f.get('description'))
      out.push({
        name: key,
        type: (typeof type === 'string' ? type : 'string') as WorkflowInput['type'],
        required: literal(f.get('required')) === true,
        default: dflt === undefined ? null : dflt,
        options: options && isSequence(options) ? [...options].map((o) => String(literal(o))) : [],
        description: typeof description === 'string' ? description : null,
      })
    }
  }
  return out
}

/** GitHub only says a workflow "must contain at least one job with no dependencies"; we name the cycle. */
/** Every cycle, each as its path, at the entry of the first job's needs that is on it. */
function checkCycles(jobs: WorkflowJob[], needsTokens: Map<string, TemplateToken>, report: Report): void {
  const known = new Set(jobs.map((j) => j.key))
  const graph = jobs.map((j) => ({ key: j.key, needs: j.needs.filter((n) => known.has(n)) }))
  for (let guard = 0; guard < jobs.length; guard++) {
    const cycle = findCycle(graph)
    if (!cycle) return
    const [from, to] = [cycle[0]!, cycle[1]!]
    const needs = needsTokens.get(from)
    const items = needs && isSequence(needs) ? [...needs] : needs ? [needs] : []
    report(
      items.find((t) => literal(t) === to) ?? needs,
      `jobs.${from}.needs`,
      `dependency cycle: ${cycle.join(' -> ')}`,
    )
    // Break this cycle at its first edge and look for another.
    const job = graph.find((g) => g.key === from)!
    job.needs = job.needs.filter((n) => n !== to)
  }
}

/** Needs that name no job, at their own entry, with a suggestion or the list of jobs. */
function checkUnknownNeeds(
  jobs: WorkflowJob[],
  declared: string[],
  needsTokens: Map<string, TemplateToken>,
  report: Report,
): void {
  for (const job of jobs) {
    const token = needsTokens.get(job.key)
    const items = token && isSequence(token) ? [...token] : token ? [token] : []
    items.forEach((item, i) => {
      const name = literal(item)
      if (typeof name !== 'string' || declared.includes(name)) return
      const guess = name ? suggest(name, declared) : null
      const what = name ? `unknown job "${name}"` : 'an empty job name'
      report(
        item,
        isSequence(token!) ? `jobs.${job.key}.needs[${i}]` : `jobs.${job.key}.needs`,
        `job "${job.key}" needs ${what}` +
          (guess ? `; did you mean "${guess}"?` : `; the jobs are: ${declared.join(', ')}`),
      )
    })
  }
}

/** Adds the field path and a suggestion to a problem from GitHub's parser. */
function explain(p: SourceProblem, root: MappingToken | null, text: string): SourceProblem {
  const located = root ? locate(root, p.line, p.col) : null
  let path = located?.mappingPath ?? located?.path ?? ''
  let message = p.message
  const unexpected = /^Unexpected value '([^']+)'$/.exec(message)
  // GitHub says "Unexpected value" for unknown keys and for values of the wrong kind alike; the
  // YAML itself tells which it is.
  const at = unexpected ? mappingValueAt(text, p.line, p.col) : null
  if (unexpected && at) {
    const valueOf = at.key
    const expected = EXPECTED[valueOf]
    path = path.endsWith(`.${valueOf}`) || path === valueOf ? path : path ? `${path}.${valueOf}` : valueOf
    // A quoted "true" or "30" is a string to GitHub: say so, it is the usual reason.
    const quoted =
      at.quoted && /^(true|false|\d+(\.\d+)?)$/.test(unexpected[1]!)
        ? ' (a quoted string; remove the quotes)'
        : ''
    message = expected
      ? `"${valueOf}" must be ${expected}, not "${unexpected[1]}"${quoted}`
      : `"${valueOf}" cannot be "${unexpected[1]}" here${quoted}`
    return { ...p, path, message }
  }
  if (unexpected && !located?.isValue) {
    // The parser drops the unknown key, so the position falls inside the mapping that held it.
    const container = located?.mappingPath ?? located?.path ?? ''
    const level = levelOf(container)
    path = container ? `${container}.${unexpected[1]}` : unexpected[1]!
    const guess = level ? suggest(unexpected[1]!, KEYS[level]) : null
    if (level && guess === unexpected[1]) {
      // A known key that cannot stand with the others here (run with uses, runs-on in a reusable-workflow call).
      message = notTogether(unexpected[1]!, level)
      return { ...p, path, message }
    }
    message =
      `unknown key "${unexpected[1]}"` +
      (guess ? `; did you mean "${guess}"?` : level ? `; expected one of: ${KEYS[level].join(', ')}` : '')
  }
  const context = /^Unrecognized named-value: '([^']+)'$/.exec(message)
  if (context) {
    const name = context[1]!
    message = CONTEXTS.includes(name)
      ? `the "${name}" context is not available here`
      : `unknown context "${name}"` +
        (suggest(name, CONTEXTS)
          ? `; did you mean "${suggest(name, CONTEXTS)}"?`
          : `; the contexts are: ${CONTEXTS.join(', ')}`)
  }
  const fn = /^Unrecognized function: '([^']+)'$/.exec(message)
  if (fn) {
    const name = fn[1]!
    const known = FUNCTIONS.find((f) => f.toLowerCase() === name.toLowerCase())
    message = known
      ? `${known}() is not available here`
      : `unknown function "${name}"` +
        (suggest(name, FUNCTIONS) ? `; did you mean "${suggest(name, FUNCTIONS)}"?` : '')
  }
  const missing = /^Required property is missing: (\S+)$/.exec(message)
  if (missing) {
    path = path ? `${path}.${missing[1]}` : missing[1]!
    message = `"${missing[1]}" is required here`
  }
  return { ...p, path, message }
}

/**
 * GitHub's parser often says one thing twice at one place ("A sequence was not expected" then
 * "Invalid format for jobs"); keep the first. A "required" problem that an unknown key's
 * suggestion already explains (runs_on -> runs-on) goes too.
 */
function tidy(problems: SourceProblem[]): SourceProblem[] {
  const echo =
    /^(Invalid format for |Unexpected type '.*' encountered while reading|There's not enough info to determine what you meant|Unexpected symbol: '\$\{\{')/
  const empty = "Unexpected value ''"
  const parent = (path: string) => path.replace(/(\.[^.[\]]+|\[\d+\])$/, '')
  const out: SourceProblem[] = []
  for (const p of problems) {
    const here = problems.filter((q) => q !== p && q.line === p.line && q.col === p.col)
    const primary = (q: SourceProblem) => !echo.test(q.message) && q.message !== empty
    if (!primary(p)) {
      // An echo, or GitHub's bare "Unexpected value ''": kept only when nothing clearer is said here.
      if (here.some(primary)) continue
      if (out.some((q) => q.line === p.line && q.col === p.col)) continue
      if (p.message === empty || here.some((q) => q.message === empty)) {
        out.push({ ...p, message: 'a value is required here' })
        continue
      }
      // An expression error GitHub repeats for the `${{` wrapper: the line's other problem says it.
      if (
        /^Unexpected symbol: '\$\{\{'/.test(p.message) &&
        problems.some((q) => q !== p && q.line === p.line)
      )
        continue
    }
    const required = /^"(\S+)" is required here$/.exec(p.message)
    if (
      required &&
      problems.some(
        (q) => q.message.includes(`did you mean "${required[1]}"?`) && parent(q.path) === parent(p.path),
      )
    ) {
      continue
    }
    out.push(p)
  }
  return out
}

function dropWhere(problems: SourceProblem[], test: (p: SourceProblem) => boolean): void {
  for (let i = problems.length - 1; i >= 0; i--) if (test(problems[i]!)) problems.splice(i, 1)
}

interface Located {
  /** Path of the deepest token containing the position. */
  path: string
  /** Path of the mapping that starts exactly at the position (where "missing property" errors point). */
  mappingPath?: string
  /** The position is a value (a sequence item or mapping value), not a key. */
  isValue?: boolean
  /** When the position is a mapping key: which kind of mapping holds it. */
  level?: 'workflow' | 'job' | 'step'
}

/** Which kind of mapping the keys at `path` belong to, for suggestions. */
function levelOf(path: string): Located['level'] {
  if (path === '') return 'workflow'
  if (/^jobs\.[^.]+$/.test(path)) return 'job'
  if (/^jobs\.[^.]+\.steps\[\d+\]$/.test(path)) return 'step'
  return undefined
}

function locate(root: MappingToken, line: number, col: number): Located | null {
  const inside = (t: TemplateToken) => {
    const r = t.range
    if (!r) return false
    const after = line > r.start.line || (line === r.start.line && col >= r.start.column)
    const before = line < r.end.line || (line === r.end.line && col <= r.end.column)
    return after && before
  }
  let found: Located | null = null
  let mappingPath: string | undefined
  const walk = (t: TemplateToken, path: string): void => {
    if (isMapping(t)) {
      if (mappingPath === undefined && t.range?.start.line === line && t.range.start.column === col)
        mappingPath = path
      for (const { key, keyToken, value } of entries(t)) {
        const p = path ? `${path}.${key}` : key
        const r = keyToken.range
        if (r && r.start.line === line && r.start.column === col) {
          found = { path: p, level: levelOf(path) }
          return
        }
        if (inside(value) || inside(keyToken)) {
          found = { path: p }
          walk(value, p)
        }
      }
    } else if (isSequence(t)) {
      ;[...t].forEach((item, i) => {
        if (!inside(item)) return
        const r = item.range
        found = {
          path: `${path}[${i}]`,
          isValue: !isMapping(item) && r?.start.line === line && r.start.column === col,
        }
        walk(item, `${path}[${i}]`)
      })
    }
  }
  walk(root, '')
  if (mappingPath !== undefined) return { ...(found ?? { path: mappingPath }), mappingPath, isValue: false }
  return found
}

function sortProblems(problems: SourceProblem[]): SourceProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col)
}

/**
 * `--job ID`: the workflow cut down to that job and every job it needs, directly or not.
 * An unknown id is an InvalidSourceError naming the jobs there are.
 */
export function selectJob(workflow: Workflow, key: string | undefined): Workflow {
  if (key === undefined) return workflow
  const byKey = new Map(workflow.jobs.map((j) => [j.key, j]))
  if (!byKey.has(key)) {
    const keys = workflow.jobs.map((j) => j.key)
    const guess = suggest(key, keys)
    throw new InvalidSourceError('workflow', [
      {
        file: workflow.file,
        line: 1,
        col: 1,
        path: 'jobs',
        message:
          `--job ${key}: no such job` +
          (guess ? `; did you mean "${guess}"?` : `; the jobs are: ${keys.join(', ')}`),
      },
    ])
  }
  const keep = new Set<string>()
  const visit = (k: string) => {
    if (keep.has(k)) return
    keep.add(k)
    for (const n of byKey.get(k)!.needs) visit(n)
  }
  visit(key)
  return { ...workflow, jobs: workflow.jobs.filter((j) => keep.has(j.key)) }
}
