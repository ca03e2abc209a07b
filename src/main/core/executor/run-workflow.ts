/**
 * Runs a validated workflow on a farm, with GitHub's meaning: prepare (evaluate each job's
 * `runs-on`, match it to nodes that can take it and reach them, before anything is recorded),
 * then execute (a job starts when its needs are done and its `if` holds, on a node with a free
 * slot; its steps run in a fresh environment; every state, exit code, output and log line is
 * recorded).
 */
import { resolve } from 'node:path'
import type { JobState, LogStream, RunState, StepState } from '../../../shared/model'
import { describeNode, type Farm, type FarmNode } from '../farm/farm-model'
import { candidates, explainNoMatch, pickNode } from '../scheduler/capability-match'
import { InvalidSourceError, type SourceProblem } from '../source/source-error'
import type { RunStore } from '../store/run-store'
import {
  evaluateEnv,
  evaluateExpression,
  evaluateText,
  evaluateToken,
  toText,
  truthy,
  type ExpressionContexts,
  type Json,
  type RunStatus,
} from '../workflow/expressions'
import {
  collectScript,
  FILE_COMMAND_VARS,
  FILE_COMMANDS,
  parseKeyValueFile,
  splitCollected,
} from '../workflow/file-commands'
import { WorkflowCommands } from '../workflow/workflow-commands'
import type { Workflow, WorkflowJob, WorkflowStep } from '../workflow/workflow-model'
import type { JobEnvironment } from './job-environment'
import { LogSink, type LogTarget } from './log-sink'
import type { NodeSession, NodeSessions } from './node-sessions'
import { githubContext, resolveInputs, runnerArch, runnerOs, type RunParameters } from './run-contexts'

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

export interface RunObserver {
  runChanged?(runId: number, state: RunState): void
  jobChanged?(
    runId: number,
    jobKey: string,
    state: JobState,
    detail: { node?: string; reason?: string | null },
  ): void
  stepChanged?(
    runId: number,
    jobKey: string,
    stepIndex: number,
    name: string,
    state: StepState,
    exitCode: number | null,
  ): void
  log?(target: LogTarget, stream: LogStream, text: string): void
  logsStored?(runId: number, lastSeq: number): void
}

export interface PreparedRun {
  workflow: Workflow
  farm: Farm
  params: RunParameters
  inputs: Record<string, Json>
  /** job key -> its evaluated runs-on labels */
  runsOn: Map<string, string[]>
  /** job key -> reachable nodes that carry its labels, in farm order */
  nodesFor: Map<string, FarmNode[]>
  sessions: Map<string, NodeSession>
  /** Nodes that could not be opened but were not needed by every job (reported as warnings). */
  unreachable: Array<{ node: FarmNode; reason: string }>
}

/** The labels of a `runs-on` value: a label, a list, or `{ group, labels }`. */
export function runsOnLabels(value: Json): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.map((v) => toText(v))
  if (value && typeof value === 'object') {
    const labels = value.labels
    const group = value.group
    return [...(group ? [`group:${toText(group)}`] : []), ...runsOnLabels(labels ?? null)]
  }
  return []
}

/**
 * Evaluates runs-on, matches jobs to nodes and opens those nodes. Throws InvalidSourceError (a
 * job no node can take), InvalidInputError or NoReachableNodeError; records nothing.
 */
export async function prepareRun(
  workflow: Workflow,
  farm: Farm,
  sessions: NodeSessions,
  params: RunParameters = {},
): Promise<PreparedRun> {
  const inputs = resolveInputs(workflow.inputs, params.inputs ?? {})
  const planContexts: ExpressionContexts = {
    github: githubContext(workflow, 0, params),
    inputs,
    vars: params.vars ?? {},
    needs: {},
    strategy: {},
    matrix: {},
  }
  const problems: SourceProblem[] = []
  const problem = (job: WorkflowJob, message: string) =>
    problems.push({
      file: workflow.file,
      line: job.line,
      col: job.col,
      path: `jobs.${job.key}.runs-on`,
      message,
    })
  const matched = new Map<string, FarmNode[]>()
  const runsOn = new Map<string, string[]>()
  for (const job of workflow.jobs) {
    let labels: string[] = []
    try {
      labels = runsOnLabels(evaluateToken(job.runsOn, planContexts))
    } catch (e) {
      problem(job, `job "${job.key}": runs-on must be known before the run starts: ${(e as Error).message}`)
      continue
    }
    runsOn.set(job.key, labels)
    const c = candidates(labels, farm.nodes)
    if (!c.length) {
      problem(
        job,
        `job "${job.key}" cannot run on this farm${farm.file ? ` (${farm.file})` : ''}: ${explainNoMatch(labels, farm.nodes)}`,
      )
    }
    matched.set(job.key, c)
  }
  if (problems.length) throw new InvalidSourceError('workflow', problems)

  const needed = [...new Set([...matched.values()].flat())]
  const opened = await Promise.allSettled(needed.map((n) => sessions.open(n)))
  const open = new Map<string, NodeSession>()
  const failed = new Map<string, string>()
  opened.forEach((r, i) => {
    const node = needed[i]!
    if (r.status === 'fulfilled') open.set(node.name, r.value)
    else failed.set(node.name, (r.reason as Error).message)
  })

  const nodesFor = new Map<string, FarmNode[]>()
  const failures: Array<{ job: string; reasons: string[] }> = []
  for (const job of workflow.jobs) {
    const c = matched.get(job.key)!
    const reachable = c.filter((n) => open.has(n.name))
    if (!reachable.length)
      failures.push({ job: job.key, reasons: c.map((n) => failed.get(n.name) ?? `${n.name}: unknown`) })
    nodesFor.set(job.key, reachable)
  }
  if (failures.length) throw new NoReachableNodeError(failures)
  const unreachable = needed
    .filter((n) => failed.has(n.name))
    .map((node) => ({ node, reason: failed.get(node.name)! }))
  return { workflow, farm, params, inputs, runsOn, nodesFor, sessions: open, unreachable }
}

export interface ExecuteOptions {
  store: RunStore
  observer?: RunObserver
  /** Aborting cancels the run: running steps are killed, waiting jobs never start. */
  signal?: AbortSignal
  /** Recorded in history. */
  farmFile?: string | null
}

export interface RunResult {
  runId: number
  state: RunState
}

/** GitHub's names for job results, as `needs.<job>.result` gives them. */
const RESULT: Record<JobState, string> = {
  pending: '',
  running: '',
  succeeded: 'success',
  failed: 'failure',
  cancelled: 'cancelled',
  skipped: 'skipped',
}

export async function executeRun(prepared: PreparedRun, opts: ExecuteOptions): Promise<RunResult> {
  const { workflow, params } = prepared
  const { store } = opts
  const observer = opts.observer ?? {}
  const signal = opts.signal ?? new AbortController().signal
  const created = store.createRun({
    workflowName: workflow.name,
    workflowFile: resolve(workflow.file),
    farmFile: opts.farmFile ?? prepared.farm.file,
    jobs: workflow.jobs.map((j) => ({
      key: j.key,
      name: j.name,
      needs: j.needs,
      runsOn: prepared.runsOn.get(j.key) ?? [],
      steps: j.steps.map((s) => s.name),
    })),
  })
  const { runId } = created
  const instance = store.instanceId()
  const secrets = params.secrets ?? {}
  const logs = new LogSink(
    store,
    (t, stream, text) => observer.log?.(t, stream, text),
    100,
    (id, seq) => observer.logsStored?.(id, seq),
  )
  const states = new Map<string, JobState>(workflow.jobs.map((j) => [j.key, 'pending']))
  const outputs = new Map<string, Record<string, string>>()
  const setJob = (job: WorkflowJob, state: JobState, patch: Parameters<RunStore['updateJob']>[1] = {}) => {
    states.set(job.key, state)
    store.updateJob(created.jobIds.get(job.key)!, { ...patch, state })
    observer.jobChanged?.(runId, job.key, state, { node: patch.nodeName ?? undefined, reason: patch.reason })
  }
  const github = githubContext(workflow, runId, params)
  const baseContexts = (): ExpressionContexts => ({
    github,
    inputs: prepared.inputs,
    vars: params.vars ?? {},
    secrets,
    strategy: { 'fail-fast': true, 'job-index': 0, 'job-total': 1, 'max-parallel': 1 },
    matrix: {},
    needs: {},
  })

  store.setRunState(runId, 'running')
  observer.runChanged?.(runId, 'running')

  const busy = new Map<string, number>()
  const running = new Map<string, Promise<void>>()
  const pending = [...workflow.jobs]
  const finished = (s: JobState) => s !== 'pending' && s !== 'running'

  while (pending.length || running.size) {
    for (const job of [...pending]) {
      if (!job.needs.every((n) => finished(states.get(n)!))) continue
      const stepIds = created.stepIds.get(job.key)!
      const needs: Record<string, Json> = {}
      for (const n of job.needs) needs[n] = { result: RESULT[states.get(n)!], outputs: outputs.get(n) ?? {} }
      const status: RunStatus = {
        success: job.needs.every((n) => states.get(n) === 'succeeded'),
        failure: job.needs.some((n) => states.get(n) === 'failed'),
        cancelled: signal.aborted,
      }
      let run: boolean
      try {
        run = truthy(
          evaluateExpression(
            job.if,
            { ...baseContexts(), needs, github: { ...github, job: job.key } },
            status,
          ),
        )
      } catch (e) {
        pending.splice(pending.indexOf(job), 1)
        setJob(job, 'failed', {
          reason: `the job's "if" failed: ${(e as Error).message}`,
          finishedAt: Date.now(),
        })
        markSteps(store, stepIds, 'skipped')
        continue
      }
      if (!run) {
        pending.splice(pending.indexOf(job), 1)
        const unmet = job.needs.find((n) => states.get(n) !== 'succeeded')
        const reason = signal.aborted
          ? 'the run was cancelled before the job started'
          : unmet
            ? `needs job "${unmet}", which ${pastTense(states.get(unmet)!)}`
            : `its condition is false: ${job.if}`
        setJob(job, signal.aborted ? 'cancelled' : 'skipped', { reason, finishedAt: Date.now() })
        markSteps(store, stepIds, signal.aborted ? 'cancelled' : 'skipped')
        continue
      }
      const node = pickNode(prepared.nodesFor.get(job.key)!, busy)
      if (!node) continue
      pending.splice(pending.indexOf(job), 1)
      busy.set(node.name, (busy.get(node.name) ?? 0) + 1)
      const p = runJob(job, node, needs)
        .catch((e: Error) => {
          setJob(job, 'failed', { reason: `internal error: ${e.message}`, finishedAt: Date.now() })
        })
        .finally(() => {
          busy.set(node.name, busy.get(node.name)! - 1)
          running.delete(job.key)
        })
      running.set(job.key, p)
    }
    if (!running.size) break
    await Promise.race(running.values())
  }
  logs.flush()

  const failedJobs = workflow.jobs.filter(
    (j) => states.get(j.key) === 'failed' && !staticTrue(j.continueOnError),
  )
  const state: RunState = failedJobs.length
    ? 'failed'
    : [...states.values()].includes('cancelled') || signal.aborted
      ? 'cancelled'
      : 'succeeded'
  store.setRunState(runId, state)
  observer.runChanged?.(runId, state)
  return { runId, state }

  async function runJob(job: WorkflowJob, node: FarmNode, needs: Record<string, Json>): Promise<void> {
    const jobId = created.jobIds.get(job.key)!
    const stepIds = created.stepIds.get(job.key)!
    const jobTarget: LogTarget = { runId, jobId, jobKey: job.key, stepIndex: null }
    const commands = new WorkflowCommands(Object.values(secrets))
    logs.setFilter(jobId, (line) => commands.process(line))
    const fail = (reason: string) => {
      logs.line(jobTarget, 'system', reason)
      markSteps(store, stepIds, 'skipped')
      setJob(job, 'failed', { reason, finishedAt: Date.now() })
    }

    const jobGithub = { ...github, job: job.key }
    const runner = { os: runnerOs(), arch: runnerArch(), name: node.name, temp: '', tool_cache: '' }
    let contexts: ExpressionContexts = { ...baseContexts(), github: jobGithub, needs, runner, env: {} }
    let env: Record<string, string>
    let image: string | null = null
    try {
      const workflowEnv = evaluateEnv(workflow.env, contexts)
      env = { ...workflowEnv, ...evaluateEnv(job.env, { ...contexts, env: workflowEnv }) }
      contexts = { ...contexts, env }
      if (node.executor === 'docker')
        image = containerImage(evaluateToken(job.container, contexts)) ?? node.defaultImage
    } catch (e) {
      setJob(job, 'running', { nodeName: node.name, startedAt: Date.now() })
      return fail(`could not evaluate the job: ${(e as Error).message}`)
    }
    setJob(job, 'running', { nodeName: node.name, image, startedAt: Date.now() })
    logs.line(
      jobTarget,
      'system',
      `job ${job.key} on node ${describeNode(node)}${image ? ` in image ${image}` : ''}`,
    )

    const session = prepared.sessions.get(node.name)!
    let environment: JobEnvironment
    try {
      environment = await session.executor.prepare(
        {
          instance,
          runId,
          jobKey: job.key,
          image,
          env: {
            CI: 'true',
            YARDMASTER: 'true',
            GITHUB_ACTIONS: 'true',
            ...githubEnv(jobGithub),
            RUNNER_OS: runner.os,
            RUNNER_ARCH: runner.arch,
            RUNNER_NAME: node.name,
            ...env,
          },
        },
        (m) => logs.line(jobTarget, 'system', m),
        signal,
      )
    } catch (e) {
      if (signal.aborted) {
        markSteps(store, stepIds, 'cancelled')
        setJob(job, 'cancelled', { reason: 'the run was cancelled', finishedAt: Date.now() })
        return
      }
      return fail(`could not start the job on ${node.name}: ${(e as Error).message}`)
    }

    const steps: Record<string, Json> = {}
    const addedEnv: Record<string, string> = {}
    const addedPath: string[] = []
    let jobFailed = false
    let cancelled = false
    let failure: { step: WorkflowStep; code: number | null; why: string } | null = null
    const cmdRoot = `${environment.temp}/_runner_file_commands`
    try {
      const quiet = () => {}
      await environment.runStep(
        {
          script: `mkdir -p ${job.steps.map((s) => `"${cmdRoot}/${s.index}"`).join(' ')} && cd "${cmdRoot}" && for d in *; do for f in ${FILE_COMMANDS.join(' ')}; do : > "$d/$f"; done; done`,
          shell: 'sh',
          env: {},
          workingDirectory: null,
        },
        quiet,
        signal,
      )
      for (const step of job.steps) {
        const stepId = stepIds[step.index]!
        const target: LogTarget = { ...jobTarget, stepIndex: step.index }
        const stepContexts: ExpressionContexts = {
          ...contexts,
          env: { ...env, ...addedEnv },
          steps,
          job: { status: jobFailed ? 'failure' : 'success' },
          runner: { ...runner, temp: environment.temp },
          github: { ...jobGithub, workspace: environment.workspace },
        }
        const status: RunStatus = { success: !jobFailed, failure: jobFailed, cancelled: signal.aborted }
        let outcome: 'success' | 'failure' | 'cancelled' | 'skipped'
        let code: number | null = null
        let stepOutputs: Record<string, string> = {}
        let continueOnError = false
        try {
          if (!truthy(evaluateExpression(step.if, stepContexts, status)))
            outcome = signal.aborted ? 'cancelled' : 'skipped'
          else {
            continueOnError = truthy(evaluateToken(step.continueOnError, stepContexts))
            const r = await runStep(step, stepContexts, target, stepId)
            code = r.code
            stepOutputs = r.outputs
            outcome = code === 0 ? 'success' : code === null ? 'cancelled' : 'failure'
          }
        } catch (e) {
          logs.line(target, 'system', `the step could not run: ${(e as Error).message}`)
          outcome = signal.aborted ? 'cancelled' : 'failure'
          code = null
        }
        logs.endStep(target)
        const conclusion = outcome === 'failure' && continueOnError ? 'success' : outcome
        steps[step.contextKey] = { outputs: stepOutputs, outcome, conclusion }
        const state: StepState =
          outcome === 'success'
            ? 'succeeded'
            : outcome === 'failure'
              ? 'failed'
              : outcome === 'cancelled'
                ? 'cancelled'
                : 'skipped'
        store.updateStep(stepId, { state, exitCode: code, conclusion, finishedAt: Date.now() })
        if (outcome !== 'skipped') observer.stepChanged?.(runId, job.key, step.index, step.name, state, code)
        if (outcome === 'cancelled') cancelled = true
        if (conclusion === 'failure') {
          jobFailed = true
          failure ??= { step, code, why: code === null ? 'could not run' : `exited with code ${code}` }
        }
      }
      contexts = { ...contexts, steps, env: { ...env, ...addedEnv } }
    } finally {
      logs.setFilter(jobId, null)
      await environment.dispose()
    }
    let jobOutputs: Record<string, string> = {}
    try {
      jobOutputs = evaluateEnv(job.outputs, contexts)
    } catch (e) {
      logs.line(jobTarget, 'system', `could not evaluate the job's outputs: ${(e as Error).message}`)
      jobFailed = true
    }
    outputs.set(job.key, jobOutputs)
    const now = Date.now()
    if (cancelled || (signal.aborted && !jobFailed)) {
      setJob(job, 'cancelled', { reason: 'the run was cancelled', outputs: jobOutputs, finishedAt: now })
    } else if (jobFailed) {
      setJob(job, 'failed', {
        exitCode: failure?.code ?? null,
        reason: failure
          ? `step ${failure.step.index + 1} "${failure.step.name}" ${failure.why}`
          : 'the job failed',
        outputs: jobOutputs,
        finishedAt: now,
      })
    } else setJob(job, 'succeeded', { exitCode: 0, reason: null, outputs: jobOutputs, finishedAt: now })

    async function runStep(
      step: WorkflowStep,
      ctx: ExpressionContexts,
      target: LogTarget,
      stepId: number,
    ): Promise<{ code: number | null; outputs: Record<string, string> }> {
      store.updateStep(stepId, { state: 'running', startedAt: Date.now() })
      observer.stepChanged?.(runId, job.key, step.index, step.name, 'running', null)
      if (step.uses !== null) {
        logs.line(
          target,
          'system',
          `${step.uses}: built-in actions arrive with the artifacts and cache work; this step cannot run yet`,
        )
        return { code: 1, outputs: {} }
      }
      const dir = `${cmdRoot}/${step.index}`
      const fileEnv = Object.fromEntries(FILE_COMMANDS.map((f) => [FILE_COMMAND_VARS[f], `${dir}/${f}`]))
      const stepEnv = evaluateEnv(step.env, ctx)
      const wd = step.workingDirectory
        ? evaluateText(step.workingDirectory, ctx)
        : (job.defaults.workingDirectory ?? workflow.defaults.workingDirectory)
      const code = await environment.runStep(
        {
          script: evaluateText(step.run, ctx),
          shell: step.shell ?? job.defaults.shell ?? workflow.defaults.shell,
          env: {
            ...env,
            ...addedEnv,
            ...stepEnv,
            ...fileEnv,
            RUNNER_TEMP: environment.temp,
            GITHUB_WORKSPACE: environment.workspace,
          },
          workingDirectory: wd,
          pathPrepend: [...addedPath],
        },
        (stream, chunk) => logs.write(target, stream, chunk),
        signal,
      )
      logs.endStep(target)
      if (code === null) return { code, outputs: {} }
      // Read back what the step wrote to its file commands.
      let text = ''
      await environment.runStep(
        { script: collectScript(dir), shell: 'sh', env: {}, workingDirectory: null },
        (stream, chunk) => {
          if (stream === 'stdout') text += chunk.toString('utf8')
        },
        signal,
      )
      const files = splitCollected(text)
      Object.assign(addedEnv, parseKeyValueFile(files.env, '$GITHUB_ENV'))
      for (const p of files.path
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .reverse())
        addedPath.unshift(p)
      for (const line of files.summary.split('\n').filter(Boolean))
        logs.line(target, 'system', `summary: ${commands.mask(line)}`)
      return { code, outputs: parseKeyValueFile(files.output, '$GITHUB_OUTPUT') }
    }
  }
}

/** GITHUB_* variables from the github context, as the runner sets them. */
function githubEnv(github: Record<string, Json>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(github)) {
    if (k === 'event' || k === 'token' || typeof v === 'object') continue
    out[`GITHUB_${k.toUpperCase()}`] = toText(v)
  }
  return out
}

function containerImage(value: Json): string | null {
  if (typeof value === 'string') return value || null
  if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.image === 'string')
    return value.image
  return null
}

function staticTrue(token: WorkflowJob['continueOnError']): boolean {
  try {
    return truthy(evaluateToken(token, {}))
  } catch {
    return false
  }
}

function markSteps(store: RunStore, stepIds: number[], state: 'skipped' | 'cancelled'): void {
  for (const id of stepIds) store.updateStep(id, { state, conclusion: state })
}

function pastTense(s: JobState): string {
  return s === 'failed' ? 'failed' : s === 'cancelled' ? 'was cancelled' : s === 'skipped' ? 'was skipped' : s
}
