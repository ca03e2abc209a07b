/**
 * The plan of a workflow before it runs: levels of jobs that can run in parallel, the critical
 * path, matrix instances, and which farm nodes could take each one (and why the others
 * cannot). Pure: no node is contacted.
 */
import type { FarmNode, Platform } from '../farm/farm-model'
import { hostPathOf } from '../scheduler/bind-mounts'
import { requirementsOf, whyNot, type Requirements } from '../scheduler/capability-match'
import { resourceNeeds } from './container-options'
import { evaluateToken, toText, truthy, type ExpressionContexts, type Json } from './expressions'
import { levels, type GraphJob } from './job-graph'
import { expandMatrix, instanceName, type MatrixCombination } from './matrix'
import type { Workflow, WorkflowJob } from './workflow-model'
import type { ServiceSpec } from './container-options'

export interface PlannedNode {
  name: string
  /** Null when the node can take the job; else why not. */
  rejected: string | null
}

export interface PlanInstance {
  key: string
  matrix: Record<string, Json>
  runsOn: string[]
  /** The platform image a runs-on label maps to (ubuntu-latest=...), if any. */
  image: string | null
  nodes: PlannedNode[]
}

export interface PlanJob {
  key: string
  name: string
  needs: string[]
  level: number
  if: string
  /** Null when the matrix or runs-on depend on other jobs: decided at run time. */
  instances: PlanInstance[] | null
  /** Why the instances could not be planned (a bad matrix), if so. */
  problem: string | null
  failFast: boolean
  maxParallel: number | null
}

export interface WorkflowPlan {
  name: string
  file: string
  events: string[]
  triggers: Workflow['triggers']
  inputs: Workflow['inputs']
  levels: string[][]
  /** The longest chain of needs, by number of jobs. */
  criticalPath: string[]
  jobs: PlanJob[]
}

/** The labels of a `runs-on` value: a label, a list, or `{ group, labels }`. */
export function runsOnLabels(value: Json): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.map((v) => toText(v))
  if (value && typeof value === 'object') {
    const group = value.group
    return [...(group ? [`group:${toText(group)}`] : []), ...runsOnLabels(value.labels ?? null)]
  }
  return []
}

/** A job's `container:` evaluated: its image and its docker run options. */
export interface JobContainer {
  image: string | null
  options: string | null
  env: Record<string, string>
  /** `source:target[:ro]` bind mounts. */
  volumes: string[]
  /** Registry login for pulling the image. */
  credentials: { username: string; password: string } | null
}

export function containerOf(job: WorkflowJob, contexts: ExpressionContexts, evaluated?: Json): JobContainer {
  const none: JobContainer = { image: null, options: null, env: {}, volumes: [], credentials: null }
  const value = evaluated === undefined ? evaluateToken(job.container, contexts) : evaluated
  if (typeof value === 'string') return { ...none, image: value || null }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return none
  const text = (v: Json | undefined) => (v === undefined || v === null ? '' : toText(v))
  const env = value.env && typeof value.env === 'object' && !Array.isArray(value.env) ? value.env : {}
  const creds =
    value.credentials && typeof value.credentials === 'object' && !Array.isArray(value.credentials)
      ? value.credentials
      : null
  return {
    image: typeof value.image === 'string' && value.image ? value.image : null,
    options: typeof value.options === 'string' ? value.options : null,
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, text(v)])),
    volumes: Array.isArray(value.volumes) ? value.volumes.map(text) : [],
    credentials: creds ? { username: text(creds.username), password: text(creds.password) } : null,
  }
}

/** A job's `services:`, evaluated: one spec per service, in file order. */
export function servicesOf(job: WorkflowJob, contexts: ExpressionContexts): ServiceSpec[] {
  const value = evaluateToken(job.services, contexts)
  if (!value || typeof value !== 'object' || Array.isArray(value)) return []
  return Object.entries(value).map(([name, v]) => {
    const c = containerOf({ ...job, container: null }, contexts, v)
    if (!c.image) throw new Error(`service "${name}" needs an image`)
    const spec = v && typeof v === 'object' && !Array.isArray(v) ? v : {}
    const text = (x: Json | undefined) => (typeof x === 'string' && x ? x : null)
    return {
      name,
      image: c.image,
      env: c.env,
      volumes: c.volumes,
      credentials: c.credentials,
      command: text(spec.command),
      entrypoint: text(spec.entrypoint),
    }
  })
}

/** A job's volumes, container's then services' in file order, with the field each is written in. */
export function jobVolumes(
  job: WorkflowJob,
  contexts: ExpressionContexts,
): Array<{ spec: string; field: string }> {
  const out = containerOf(job, contexts).volumes.map((spec, i) => ({
    spec,
    field: `container.volumes[${i}]`,
  }))
  for (const s of servicesOf(job, contexts))
    out.push(...s.volumes.map((spec, i) => ({ spec, field: `services.${s.name}.volumes[${i}]` })))
  return out
}

/**
 * The host paths a job binds, as far as the plan can tell; what only the run can evaluate is
 * checked again when the job starts on its node (DockerExecutor).
 */
function plannedHostPaths(job: WorkflowJob, contexts: ExpressionContexts): string[] {
  if (!job.container && !job.services) return []
  try {
    return [...new Set(jobVolumes(job, contexts).flatMap((v) => hostPathOf(v.spec) ?? []))]
  } catch {
    return []
  }
}

/** Does a job's matrix or runs-on depend on other jobs (so it is planned when they finish)? */
export function plannedAtRunTime(job: WorkflowJob): boolean {
  return /\bneeds\b/.test(JSON.stringify(job.strategy ?? null) + JSON.stringify(job.runsOn ?? null))
}

/** A job's matrix combinations (one empty combination without a matrix), fail-fast and max-parallel. */
export function jobStrategy(job: WorkflowJob, contexts: ExpressionContexts) {
  const strategy = evaluateToken(job.strategy, contexts)
  const s = strategy && typeof strategy === 'object' && !Array.isArray(strategy) ? strategy : {}
  const combos = s.matrix === undefined || s.matrix === null ? [{}] : expandMatrix(s.matrix)
  const failFast = s['fail-fast'] === undefined ? true : truthy(s['fail-fast'])
  const maxParallel =
    typeof s['max-parallel'] === 'number' && s['max-parallel'] > 0 ? s['max-parallel'] : null
  return { combos, failFast, maxParallel }
}

/** Longest path through the needs graph (jobs must be acyclic, needs known). */
export function criticalPath(jobs: readonly GraphJob[]): string[] {
  const byKey = new Map(jobs.map((j) => [j.key, j]))
  const best = new Map<string, string[]>()
  for (const level of levels(jobs)) {
    for (const key of level) {
      let longest: string[] = []
      for (const n of byKey.get(key)!.needs) {
        const p = best.get(n)!
        if (p.length > longest.length) longest = p
      }
      best.set(key, [...longest, key])
    }
  }
  let out: string[] = []
  for (const p of best.values()) if (p.length > out.length) out = p
  return out
}

export function planWorkflow(
  workflow: Workflow,
  nodes: readonly FarmNode[],
  contexts: ExpressionContexts,
  platforms: Readonly<Record<string, Platform>> = {},
): WorkflowPlan {
  const lv = levels(workflow.jobs)
  const levelOf = new Map(lv.flatMap((keys, i) => keys.map((k) => [k, i] as const)))
  return {
    name: workflow.name,
    file: workflow.file,
    events: workflow.events,
    triggers: workflow.triggers,
    inputs: workflow.inputs,
    levels: lv,
    criticalPath: criticalPath(workflow.jobs),
    jobs: workflow.jobs.map((job) => planJob(job, levelOf.get(job.key)!, nodes, contexts, platforms)),
  }
}

/** One instance of a job (a matrix combination): its row key and name, labels, what it needs. */
export interface InstancePlan {
  key: string
  name: string
  matrix: MatrixCombination
  runsOn: string[]
  /** runs-on with platform labels resolved: the labels nodes need, the platform's image, docker, resources. */
  requirements: Requirements
}

/**
 * A job's instances, one per matrix combination (`combos` from jobStrategy): the one planner
 * behind `plan` and `run`. A combination is named `key (a, b)`; a job of one plain instance
 * keeps its key.
 */
export function instancesOf(
  job: WorkflowJob,
  combos: readonly MatrixCombination[],
  contexts: ExpressionContexts,
  platforms: Readonly<Record<string, Platform>>,
): InstancePlan[] {
  return combos.map((matrix) => {
    const ctx = { ...contexts, matrix }
    const runsOn = runsOnLabels(evaluateToken(job.runsOn, ctx))
    const requirements = requirementsOf(
      runsOn,
      platforms,
      resourceNeeds(containerOf(job, ctx).options),
      plannedHostPaths(job, ctx),
    )
    // Service containers need a docker node, as platform images do.
    if (job.services) requirements.docker = true
    const hasMatrix = Object.keys(matrix).length > 0
    return {
      key: combos.length > 1 || hasMatrix ? instanceName(job.key, matrix) : job.key,
      name: job.nameToken
        ? toText(evaluateToken(job.nameToken, ctx))
        : hasMatrix
          ? instanceName(job.key, matrix)
          : job.key,
      matrix,
      runsOn,
      requirements,
    }
  })
}

function planJob(
  job: WorkflowJob,
  level: number,
  nodes: readonly FarmNode[],
  contexts: ExpressionContexts,
  platforms: Readonly<Record<string, Platform>>,
): PlanJob {
  const base = { key: job.key, name: job.name, needs: job.needs, level, if: job.if }
  if (plannedAtRunTime(job))
    return { ...base, instances: null, problem: null, failFast: true, maxParallel: null }
  try {
    const { combos, failFast, maxParallel } = jobStrategy(job, contexts)
    const instances = instancesOf(job, combos, contexts, platforms).map((i) => ({
      key: i.key,
      matrix: i.matrix,
      runsOn: i.runsOn,
      image: i.requirements.image,
      nodes: nodes.map((n) => {
        const why = whyNot(i.requirements, n)
        return { name: n.name, rejected: why.length ? why.join('; ') : null }
      }),
    }))
    return { ...base, instances, problem: null, failFast, maxParallel }
  } catch (e) {
    return { ...base, instances: null, problem: (e as Error).message, failFast: true, maxParallel: null }
  }
}
