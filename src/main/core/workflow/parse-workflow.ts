/**
 * Reads a workflow in GitHub Actions syntax (the subset the walking skeleton runs) and checks
 * it completely, reporting every problem with file, line, column and field path in one pass.
 * What we do not run yet is refused here, never at run time.
 */
import { isMap, isScalar, isSeq, type Node } from 'yaml'
import { checkKeys, loadYamlFile, parseYaml, suggest, YamlSource } from '../source/yaml-source'
import { findCycle } from './job-graph'
import type { Workflow, WorkflowJob, WorkflowStep } from './workflow-model'

const WORKFLOW_KEYS = ['name', 'on', 'env', 'jobs'] as const
const JOB_KEYS = ['name', 'runs-on', 'needs', 'env', 'container', 'steps'] as const
const STEP_KEYS = ['id', 'name', 'run', 'env', 'shell', 'working-directory'] as const
const SHELLS = ['bash', 'sh'] as const
const JOB_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/

const LATER = 'is not supported yet'
const UNSUPPORTED_WORKFLOW: Record<string, string> = Object.fromEntries(
  ['run-name', 'defaults', 'concurrency', 'permissions'].map((k) => [k, `"${k}" ${LATER}`]),
)
const UNSUPPORTED_JOB: Record<string, string> = Object.fromEntries(
  [
    'if',
    'strategy',
    'services',
    'outputs',
    'timeout-minutes',
    'continue-on-error',
    'defaults',
    'environment',
    'concurrency',
    'permissions',
    'uses',
    'with',
    'secrets',
  ].map((k) => [k, `job "${k}" ${LATER}`]),
)
const UNSUPPORTED_STEP: Record<string, string> = {
  uses: 'steps with "uses:" (actions) are not supported yet; write the step as a "run:" script',
  with: 'step "with" is not supported yet (it only applies to "uses:" steps)',
  if: `step "if" ${LATER}`,
  'continue-on-error': `step "continue-on-error" ${LATER}`,
  'timeout-minutes': `step "timeout-minutes" ${LATER}`,
}

export function loadWorkflow(file: string): Workflow {
  return loadYamlFile('workflow', file, readWorkflow)
}

export function parseWorkflow(file: string, text: string): Workflow {
  return parseYaml('workflow', file, text, readWorkflow)
}

function readWorkflow(src: YamlSource): Workflow | null {
  const top = src.entries(src.root, '', 'a workflow')
  if (!top) return null
  checkKeys(src, top, WORKFLOW_KEYS, '', UNSUPPORTED_WORKFLOW)
  const get = (k: string) => top.find((e) => e.key === k)

  const nameEntry = get('name')
  const name = nameEntry ? (src.string(nameEntry.value, 'name') ?? '') : ''
  const envEntry = get('env')
  const env = envEntry ? src.stringMap(envEntry.value, 'env') : {}
  checkNoExpressions(src, envEntry?.value ?? null, 'env')

  const jobsEntry = get('jobs')
  if (!jobsEntry) {
    src.report(src.root, 'jobs', 'a workflow needs a "jobs:" mapping with at least one job')
    return null
  }
  const jobEntries = src.entries(jobsEntry.value, 'jobs', 'jobs')
  if (!jobEntries) return null
  if (jobEntries.length === 0)
    src.report(jobsEntry.value ?? jobsEntry.keyNode, 'jobs', 'a workflow needs at least one job')

  const jobs: WorkflowJob[] = []
  const needsNodes = new Map<string, Node[]>()
  for (const { key, keyNode, value } of jobEntries) {
    if (!JOB_ID.test(key)) {
      src.report(
        keyNode,
        `jobs.${key}`,
        `job id "${key}" must start with a letter or "_" and contain only letters, digits, "-" and "_"`,
      )
    }
    const job = readJob(src, key, keyNode, value, needsNodes)
    if (job) jobs.push(job)
  }
  checkNeeds(
    src,
    jobs,
    jobEntries.map((e) => e.key),
    needsNodes,
  )
  return { file: src.file, name: name || src.file.split('/').pop() || src.file, env, jobs }
}

function readJob(
  src: YamlSource,
  key: string,
  keyNode: Node,
  node: Node | null,
  needsNodes: Map<string, Node[]>,
): WorkflowJob | null {
  const path = `jobs.${key}`
  const items = src.entries(node, path, `the job "${key}"`)
  if (!items) return null
  checkKeys(src, items, JOB_KEYS, path, UNSUPPORTED_JOB)
  const get = (k: string) => items.find((e) => e.key === k)

  const runsOnEntry = get('runs-on')
  let runsOn: string[] = []
  if (!runsOnEntry)
    src.report(
      keyNode,
      `${path}.runs-on`,
      `job "${key}" needs "runs-on": the labels a node must carry to run it`,
    )
  else {
    runsOn = src.stringList(runsOnEntry.value, `${path}.runs-on`) ?? []
    checkNoExpressions(src, runsOnEntry.value, `${path}.runs-on`)
    if (runsOnEntry.value && runsOn.length === 0 && isSeq(runsOnEntry.value)) {
      src.report(runsOnEntry.value, `${path}.runs-on`, '"runs-on" needs at least one label')
    } else if (runsOn.some((l) => !l.trim())) {
      src.report(runsOnEntry.value, `${path}.runs-on`, '"runs-on" has an empty label')
    }
  }

  const needsEntry = get('needs')
  const needs = needsEntry ? (src.stringList(needsEntry.value, `${path}.needs`) ?? []) : []
  if (needsEntry?.value) {
    // Only the items that gave a string, so positions stay aligned with `needs`.
    const items = isSeq(needsEntry.value) ? (needsEntry.value.items as Node[]) : [needsEntry.value]
    needsNodes.set(
      key,
      items.filter((n) => isScalar(n) && n.value !== null && typeof n.value !== 'object'),
    )
  }

  const envEntry = get('env')
  const env = envEntry ? src.stringMap(envEntry.value, `${path}.env`) : {}
  checkNoExpressions(src, envEntry?.value ?? null, `${path}.env`)

  let image: string | null = null
  const containerEntry = get('container')
  if (containerEntry) image = readContainer(src, containerEntry.value, `${path}.container`)

  const stepsEntry = get('steps')
  const steps: WorkflowStep[] = []
  if (!stepsEntry) src.report(keyNode, `${path}.steps`, `job "${key}" needs "steps:", a list of steps to run`)
  else if (!isSeq(stepsEntry.value) || stepsEntry.value.items.length === 0) {
    src.report(
      stepsEntry.value ?? stepsEntry.keyNode,
      `${path}.steps`,
      '"steps" must be a list with at least one step',
    )
  } else {
    stepsEntry.value.items.forEach((item, i) => {
      const step = readStep(src, item as Node, `${path}.steps[${i}]`, i)
      if (step) steps.push(step)
    })
  }

  const nameEntry = get('name')
  const name = nameEntry ? (src.string(nameEntry.value, `${path}.name`) ?? key) : key
  const at = src.position(keyNode)
  return { key, name, runsOn, needs, env, image, steps, line: at.line, col: at.col }
}

function readContainer(src: YamlSource, node: Node | null, path: string): string | null {
  if (isScalar(node)) {
    checkNoExpressions(src, node, path)
    return src.string(node, path)
  }
  const items = src.entries(node, path, 'a container image name or a mapping with "image"')
  if (!items) return null
  checkKeys(src, items, ['image'], path, {
    env: `container "env" ${LATER}`,
    options: `container "options" ${LATER}`,
    volumes: `container "volumes" ${LATER}`,
    credentials: `container "credentials" ${LATER}`,
    ports: `container "ports" ${LATER}`,
  })
  const imageEntry = items.find((e) => e.key === 'image')
  if (!imageEntry) {
    src.report(node, `${path}.image`, 'a container needs an "image"')
    return null
  }
  checkNoExpressions(src, imageEntry.value, `${path}.image`)
  return src.string(imageEntry.value, `${path}.image`)
}

function readStep(src: YamlSource, node: Node, path: string, index: number): WorkflowStep | null {
  const items = src.entries(node, path, 'a step')
  if (!items) return null
  checkKeys(src, items, STEP_KEYS, path, UNSUPPORTED_STEP)
  const get = (k: string) => items.find((e) => e.key === k)

  const runEntry = get('run')
  let run: string | null = null
  if (runEntry) {
    run = src.string(runEntry.value, `${path}.run`)
    checkNoExpressions(src, runEntry.value, `${path}.run`)
  } else if (!get('uses')) src.report(node, `${path}.run`, 'a step needs "run:", the script to run')

  const shellEntry = get('shell')
  let shell: WorkflowStep['shell'] = null
  if (shellEntry) {
    const s = src.string(shellEntry.value, `${path}.shell`)
    if (s !== null && !(SHELLS as readonly string[]).includes(s)) {
      const guess = suggest(s, SHELLS)
      src.report(
        shellEntry.value,
        `${path}.shell`,
        `shell "${s}" is not supported yet; use one of: ${SHELLS.join(', ')}` +
          (guess ? ` (did you mean "${guess}"?)` : ''),
      )
    } else if (s !== null) shell = s as 'bash' | 'sh'
  }

  const envEntry = get('env')
  const env = envEntry ? src.stringMap(envEntry.value, `${path}.env`) : {}
  checkNoExpressions(src, envEntry?.value ?? null, `${path}.env`)
  const idEntry = get('id')
  const id = idEntry ? src.string(idEntry.value, `${path}.id`) : null
  const wdEntry = get('working-directory')
  const workingDirectory = wdEntry ? src.string(wdEntry.value, `${path}.working-directory`) : null
  checkNoExpressions(src, wdEntry?.value ?? null, `${path}.working-directory`)
  const nameEntry = get('name')
  const explicitName = nameEntry ? src.string(nameEntry.value, `${path}.name`) : null
  if (run !== null && !run.trim())
    src.report(runEntry?.value, `${path}.run`, '"run" is empty: give the script to run')
  if (run === null) return null
  const firstLine = run.trim().split('\n')[0] ?? ''
  return { index, id, name: explicitName ?? `Run ${firstLine}`, run, env, shell, workingDirectory }
}

/** Unknown and self `needs` (with suggestions), then cycles, reported as their path. */
function checkNeeds(
  src: YamlSource,
  jobs: WorkflowJob[],
  declared: string[],
  needsNodes: Map<string, Node[]>,
): void {
  // Every declared job counts as known, even one whose own definition is broken (reported already).
  const keys = declared
  let broken = false
  for (const job of jobs) {
    job.needs.forEach((dep, i) => {
      const node = needsNodes.get(job.key)?.[i]
      const path = `jobs.${job.key}.needs`
      if (dep === job.key) {
        src.report(node, path, `job "${job.key}" cannot need itself`)
        broken = true
      } else if (!keys.includes(dep)) {
        const guess = suggest(dep, keys)
        src.report(
          node,
          path,
          `job "${job.key}" needs unknown job "${dep}"` +
            (guess ? `; did you mean "${guess}"?` : `; the jobs are: ${keys.join(', ')}`),
        )
        broken = true
      }
    })
  }
  if (broken) return
  const cycle = findCycle(jobs)
  if (cycle) {
    // Point at the entry of the first job's needs that is on the cycle.
    const first = jobs.find((j) => j.key === cycle[0])!
    src.report(
      needsNodes.get(first.key)?.[first.needs.indexOf(cycle[1]!)],
      `jobs.${cycle[0]}.needs`,
      `dependency cycle: ${cycle.join(' -> ')}`,
    )
  }
}

/** Expressions (`${{ }}`) arrive with the full workflow engine; until then refuse them clearly. */
function checkNoExpressions(src: YamlSource, node: Node | null, path: string): void {
  if (node === null) return
  if (isScalar(node)) {
    if (typeof node.value === 'string' && node.value.includes('${{')) {
      src.report(
        node,
        path,
        'expressions ("${{ ... }}") are not supported yet; use environment variables ($NAME) in scripts',
      )
    }
    return
  }
  if (isMap(node)) {
    for (const pair of node.items)
      checkNoExpressions(
        src,
        pair.value as Node | null,
        `${path}.${String((pair.key as { value?: unknown })?.value)}`,
      )
  } else if (isSeq(node)) node.items.forEach((n, i) => checkNoExpressions(src, n as Node, `${path}[${i}]`))
}
