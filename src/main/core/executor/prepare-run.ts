/**
 * Before a run is recorded: resolve its inputs; for every job whose matrix and `runs-on` are
 * known before the run (no `needs` in them), expand the matrix, evaluate `runs-on` per instance,
 * match nodes and open them. Nothing is recorded until this succeeds, so a run that cannot start
 * leaves no trace, and says why with file:line:col.
 */
import type { Farm, FarmNode } from '../farm/farm-model'
import { explainRequirements, nodesFor } from '../scheduler/capability-match'
import { InvalidSourceError, type SourceProblem } from '../source/source-error'
import type { ExpressionContexts, Json } from '../workflow/expressions'
import { instancesOf, jobStrategy, jobVolumes, plannedAtRunTime, type InstancePlan } from '../workflow/plan'
import { allowHint, hostPathAllowed, hostPathOf, volumePositions } from '../scheduler/bind-mounts'
import type { Workflow, WorkflowJob } from '../workflow/workflow-model'
import type { NodeSession, NodeSessions } from './node-sessions'
import { probeNode } from '../farm/node-probe'
import { mergeCapabilities } from '../farm/capabilities'
import { githubContext, resolveInputs, type RunParameters } from './run-contexts'

/** The run could not start: no reachable node for a job. Nothing was recorded. */
export class NoReachableNodeError extends Error {
  constructor(readonly failures: Array<{ job: string; reasons: string[] }>) {
    super(
      'the run did not start, nothing was recorded:\n' +
        failures
          .map((f) => `  job ${f.job}: no reachable node:\n${f.reasons.map((r) => `    - ${r}`).join('\n')}`)
          .join('\n'),
    )
    this.name = 'NoReachableNodeError'
  }
}

/** One job, or one combination of its matrix. */
export interface PlannedInstance extends InstancePlan {
  /** Reachable nodes that can take it, in farm order. */
  nodes: FarmNode[]
}

export interface PreparedRun {
  workflow: Workflow
  farm: Farm
  params: RunParameters
  inputs: Record<string, Json>
  /** job key -> its instances, or null when its matrix or runs-on depend on other jobs (decided at run time) */
  instances: Map<string, PlannedInstance[] | null>
  sessions: NodeSessions
  opened: Map<string, NodeSession>
  /** Nodes that could not be opened but were not needed by every job (reported as warnings). */
  unreachable: Array<{ node: FarmNode; reason: string }>
}

/** A job's instances with the nodes that can take each (farm order). */
export function planInstances(job: WorkflowJob, farm: Farm, contexts: ExpressionContexts): PlannedInstance[] {
  const { combos } = jobStrategy(job, contexts)
  return instancesOf(job, combos, contexts, farm.platforms).map((i) => ({
    ...i,
    nodes: nodesFor(i.requirements, farm.nodes),
  }))
}

interface PlanProblem extends SourceProblem {
  /** No node carries the labels (as opposed to a bad matrix or runs-on). */
  noNode: boolean
}

/** Instances of every job that can be planned before the run, and the problems found. */
function planAll(workflow: Workflow, farm: Farm, planContexts: ExpressionContexts) {
  const problems: PlanProblem[] = []
  const instances = new Map<string, PlannedInstance[] | null>()
  for (const job of workflow.jobs) {
    const problem = (message: string, field = '', noNode = false) =>
      problems.push({
        file: workflow.file,
        line: job.line,
        col: job.col,
        path: `jobs.${job.key}${field}`,
        message,
        noNode,
      })
    if (plannedAtRunTime(job)) {
      instances.set(job.key, null)
      continue
    }
    try {
      const planned = planInstances(job, farm, planContexts)
      for (const p of planned) {
        const mounts = p.nodes.length ? [] : refusedMountProblems(workflow, job, p, farm, planContexts)
        if (mounts.length) problems.push(...mounts.map((m) => ({ ...m, noNode: false })))
        else if (!p.nodes.length) {
          problem(
            `job "${p.key}" cannot run on this farm${farm.file ? ` (${farm.file})` : ''}: ${explainRequirements(p.requirements, farm.nodes)}`,
            '.runs-on',
            true,
          )
        }
      }
      instances.set(job.key, planned)
    } catch (e) {
      problem(`job "${job.key}": ${(e as Error).message}`)
    }
  }
  return { problems, instances }
}

/**
 * When the only thing that keeps an instance off the nodes that would take it is a host path it
 * binds, one problem per such volume, where it is written, saying what to change.
 */
function refusedMountProblems(
  workflow: Workflow,
  job: WorkflowJob,
  inst: PlannedInstance,
  farm: Farm,
  contexts: ExpressionContexts,
): SourceProblem[] {
  const fitting = nodesFor({ ...inst.requirements, hostPaths: [] }, farm.nodes)
  if (!fitting.length || !inst.requirements.hostPaths.length) return []
  const positions = volumePositions(job.container, job.services)
  const out: SourceProblem[] = []
  for (const v of jobVolumes(job, { ...contexts, matrix: inst.matrix })) {
    const path = hostPathOf(v.spec)
    if (path === null || fitting.some((n) => hostPathAllowed(path, n.allowedHostPaths ?? []))) continue
    const at = positions.find((p) => p.field === v.field) ?? { line: job.line, col: job.col }
    out.push({
      file: workflow.file,
      line: at.line,
      col: at.col,
      path: `jobs.${job.key}.${v.field}`,
      message:
        `"${v.spec}" would bind-mount the host path "${path}", which no node that can take job "${inst.key}" ` +
        `allows: host paths are refused unless the farm file opens them. Use a named volume (name:${v.spec.split(':')[1] ?? '/path'}), ` +
        `or ${fitting.map((n) => allowHint(path, n)).join('; or ')}`,
    })
  }
  return out
}

/** The farm with each node's labels merged with what a probe finds (unreachable nodes keep theirs). */
async function withProbedLabels(farm: Farm, sessions: NodeSessions): Promise<Farm> {
  const nodes = await Promise.all(
    farm.nodes.map(async (node) => {
      try {
        const handle = await sessions.open(node)
        const facts = await probeNode(handle, { timeoutMs: 5_000 })
        return { ...node, labels: mergeCapabilities(node, facts).labels }
      } catch {
        return node
      }
    }),
  )
  return { ...farm, nodes }
}

/**
 * Resolves inputs, plans what can be planned, matches jobs to nodes and opens those nodes.
 * Throws InvalidSourceError (a job no node can take, a bad matrix), InvalidInputError or
 * NoReachableNodeError; records nothing.
 */
export async function prepareRun(
  workflow: Workflow,
  givenFarm: Farm,
  sessions: NodeSessions,
  params: RunParameters = {},
): Promise<PreparedRun> {
  // Nodes an admin took out of service take no new jobs; say so when that leaves a job without one.
  const unavailable = params.unavailable ?? new Map<string, string>()
  let farm = { ...givenFarm, nodes: givenFarm.nodes.filter((n) => !unavailable.has(n.name)) }
  const outOfService = [...unavailable].filter(([name]) => givenFarm.nodes.some((n) => n.name === name))
  const inputs = resolveInputs(workflow.inputs, params.inputs ?? {})
  const planContexts: ExpressionContexts = {
    github: githubContext(workflow, 0, params),
    inputs,
    vars: params.vars ?? {},
    needs: {},
    strategy: {},
    matrix: {},
  }
  // Declared labels first; when they leave a job without a node, learn the nodes' automatic
  // labels (OS, architecture, docker, gpu, engine key=value, as GitHub's runners carry them) by
  // probing them, and match again.
  let plan = planAll(workflow, farm, planContexts)
  if (plan.problems.some((p) => p.noNode)) {
    farm = await withProbedLabels(farm, sessions)
    plan = planAll(workflow, farm, planContexts)
  }
  const { problems, instances } = plan
  if (problems.length) {
    const note = outOfService.length
      ? `; out of service: ${outOfService.map(([n, why]) => `${n} (${why})`).join(', ')}`
      : ''
    throw new InvalidSourceError(
      'workflow',
      problems.map(({ noNode, ...p }) => (noNode ? { ...p, message: p.message + note } : p)),
    )
  }

  const needed = [...new Set([...instances.values()].flatMap((list) => (list ?? []).flatMap((i) => i.nodes)))]
  const results = await Promise.allSettled(needed.map((n) => sessions.open(n)))
  const opened = new Map<string, NodeSession>()
  const failed = new Map<string, string>()
  results.forEach((r, i) => {
    const node = needed[i]!
    if (r.status === 'fulfilled') opened.set(node.name, r.value)
    else failed.set(node.name, (r.reason as Error).message)
  })

  const failures: Array<{ job: string; reasons: string[] }> = []
  for (const list of instances.values()) {
    for (const inst of list ?? []) {
      const reachable = inst.nodes.filter((n) => opened.has(n.name))
      if (!reachable.length)
        failures.push({
          job: inst.key,
          reasons: inst.nodes.map((n) => failed.get(n.name) ?? `${n.name}: unknown`),
        })
      inst.nodes = reachable
    }
  }
  if (failures.length) throw new NoReachableNodeError(failures)
  const unreachable = needed
    .filter((n) => failed.has(n.name))
    .map((node) => ({ node, reason: failed.get(node.name)! }))
  return { workflow, farm, params, inputs, instances, sessions, opened, unreachable }
}
