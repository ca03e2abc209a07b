/** `yardmaster plan <workflow.yml> [--farm farm.yml] [--input K=V]... [--json]`: the job graph, offline. */
import { githubContext, resolveInputs } from '../core/executor/run-contexts'
import { loadWorkflow, selectJob } from '../core/workflow/parse-workflow'
import { planWorkflow, type WorkflowPlan } from '../core/workflow/plan'
import { EXIT, type ParsedArgs } from './args'
import { loadFarm } from './farm-option'
import { paint, type CliIo } from './output'

export async function planCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  const file = args.positionals[0]
  if (!file) {
    io.err(
      'yardmaster plan: which workflow? usage: yardmaster plan <workflow.yml> [--farm farm.yml] [--json]\n',
    )
    return EXIT.invalid
  }
  const workflow = await loadWorkflow(file)
  const farm = await loadFarm(args.farm, args.platforms)
  const inputs = resolveInputs(workflow.inputs, args.inputs)
  const plan = planWorkflow(
    selectJob(workflow, args.job),
    farm.nodes,
    {
      github: githubContext(workflow, 0, { inputs: args.inputs, event: args.event }),
      inputs,
      vars: args.vars,
      needs: {},
      strategy: {},
      matrix: {},
    },
    farm.platforms,
  )
  if (args.json) io.out(JSON.stringify(plan) + '\n')
  else io.out(renderPlan(io, plan, farm.file))
  const stuck = plan.jobs.some((j) => j.problem || j.instances?.some((i) => i.nodes.every((n) => n.rejected)))
  return stuck ? EXIT.invalid : EXIT.ok
}

function renderPlan(io: CliIo, plan: WorkflowPlan, farmFile: string | null): string {
  const out: string[] = []
  out.push(`${paint(io, 1, plan.name)} (${plan.file})`)
  out.push(
    `on: ${plan.events.map((e) => `${e}${describeTrigger(plan.triggers[e])}`).join(', ') || '(no trigger)'}`,
  )
  for (const i of plan.inputs) {
    out.push(
      `  input ${i.name}: ${i.type}${i.required ? ', required' : ''}${i.default !== null ? ` = ${String(i.default)}` : ''}${i.options.length ? ` (${i.options.join(' | ')})` : ''}`,
    )
  }
  out.push(`farm: ${farmFile ?? 'this machine (embedded default)'}`)
  out.push('', 'levels (jobs in a level can run in parallel):')
  plan.levels.forEach((keys, i) => out.push(`  ${i + 1}. ${keys.join(', ')}`))
  out.push(
    '',
    `critical path: ${plan.criticalPath.join(' -> ')} (${plan.criticalPath.length} job${plan.criticalPath.length === 1 ? '' : 's'})`,
    '',
  )
  for (const job of plan.jobs) {
    const cond = job.if === 'success()' ? '' : `  if: ${job.if}`
    out.push(`${paint(io, 1, job.key)}${job.needs.length ? `  needs: ${job.needs.join(', ')}` : ''}${cond}`)
    if (job.problem) out.push(paint(io, 31, `  cannot plan: ${job.problem}`))
    else if (!job.instances) out.push('  matrix or runs-on depend on other jobs: decided when they finish')
    else {
      if (job.instances.length > 1) {
        out.push(
          `  matrix: ${job.instances.length} instances${job.failFast ? ', fail-fast' : ''}${job.maxParallel ? `, at most ${job.maxParallel} at a time` : ''}`,
        )
      }
      for (const inst of job.instances) {
        const can = inst.nodes.filter((n) => !n.rejected).map((n) => n.name)
        const cannot = inst.nodes.filter((n) => n.rejected).map((n) => `${n.name}: ${n.rejected}`)
        const label = job.instances.length > 1 ? `  ${inst.key}: ` : '  '
        out.push(
          `${label}runs-on [${inst.runsOn.join(', ')}] -> ` +
            (can.length ? paint(io, 32, can.join(', ')) : paint(io, 31, 'no node can take it')) +
            (cannot.length ? paint(io, 2, `  (not ${cannot.join('; ')})`) : ''),
        )
      }
    }
  }
  return out.join('\n') + '\n'
}

/** ` (branches: main; paths: src/**)`, ` (0 2 * * 1)` for schedules; empty when there is nothing to say. */
function describeTrigger(config: unknown): string {
  if (Array.isArray(config)) {
    const crons = config.map((c) => (c as { cron?: string }).cron).filter(Boolean)
    return crons.length ? ` (${crons.join('; ')})` : ''
  }
  if (!config || typeof config !== 'object') return ''
  const parts = Object.entries(config)
    .filter(([k, v]) => k !== 'inputs' && k !== 'secrets' && Array.isArray(v) && v.length)
    .map(([k, v]) => `${k}: ${(v as string[]).join(', ')}`)
  return parts.length ? ` (${parts.join('; ')})` : ''
}
