/**
 * Runs a validated workflow on a farm: prepare (match every job to nodes that can take it and
 * reach them, before anything is recorded), then execute (jobs wait for their needs and for a
 * free slot; each runs its steps in a fresh environment on its node; everything is recorded).
 */
import { resolve } from 'node:path'
import type { JobState, LogStream, RunState, StepState } from '../../../shared/model'
import { describeNode, type Farm, type FarmNode } from '../farm/farm-model'
import { candidates, explainNoMatch, pickNode } from '../scheduler/capability-match'
import { InvalidSourceError, type SourceProblem } from '../source/source-error'
import type { RunStore } from '../store/run-store'
import type { Workflow, WorkflowJob } from '../workflow/workflow-model'
import { LogSink, type LogTarget } from './log-sink'
import type { NodeSession, NodeSessions } from './node-sessions'

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
  /** job key -> reachable nodes that carry its labels, in farm order */
  nodesFor: Map<string, FarmNode[]>
  sessions: Map<string, NodeSession>
  /** Nodes that could not be opened but were not needed by every job (reported as warnings). */
  unreachable: Array<{ node: FarmNode; reason: string }>
}

/**
 * Matches jobs to nodes and opens those nodes. Throws InvalidSourceError (a job no node can
 * take) or NoReachableNodeError; records nothing.
 */
export async function prepareRun(
  workflow: Workflow,
  farm: Farm,
  sessions: NodeSessions,
): Promise<PreparedRun> {
  const problems: SourceProblem[] = []
  const matched = new Map<string, FarmNode[]>()
  for (const job of workflow.jobs) {
    const c = candidates(job.runsOn, farm.nodes)
    if (!c.length) {
      problems.push({
        file: workflow.file,
        line: job.line,
        col: job.col,
        path: `jobs.${job.key}.runs-on`,
        message: `job "${job.key}" cannot run on this farm${farm.file ? ` (${farm.file})` : ''}: ${explainNoMatch(job.runsOn, farm.nodes)}`,
      })
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
  return { workflow, farm, nodesFor, sessions: open, unreachable }
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

export async function executeRun(prepared: PreparedRun, opts: ExecuteOptions): Promise<RunResult> {
  const { workflow } = prepared
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
      runsOn: j.runsOn,
      steps: j.steps.map((s) => s.name),
    })),
  })
  const { runId } = created
  const instance = store.instanceId()
  const logs = new LogSink(
    store,
    (t, stream, text) => observer.log?.(t, stream, text),
    100,
    (id, seq) => observer.logsStored?.(id, seq),
  )
  const states = new Map<string, JobState>(workflow.jobs.map((j) => [j.key, 'pending']))
  const setJob = (job: WorkflowJob, state: JobState, patch: Parameters<RunStore['updateJob']>[1] = {}) => {
    states.set(job.key, state)
    store.updateJob(created.jobIds.get(job.key)!, { ...patch, state })
    observer.jobChanged?.(runId, job.key, state, { node: patch.nodeName ?? undefined, reason: patch.reason })
  }

  store.setRunState(runId, 'running')
  observer.runChanged?.(runId, 'running')

  const busy = new Map<string, number>()
  const running = new Map<string, Promise<void>>()
  const pending = [...workflow.jobs]
  const finished = (s: JobState) => s !== 'pending' && s !== 'running'

  while (pending.length || running.size) {
    for (const job of [...pending]) {
      const needStates = job.needs.map((n) => [n, states.get(n)!] as const)
      if (signal.aborted) {
        pending.splice(pending.indexOf(job), 1)
        setJob(job, 'cancelled', {
          reason: 'the run was cancelled before the job started',
          finishedAt: Date.now(),
        })
        skipSteps(store, created.stepIds.get(job.key)!, 'cancelled')
        continue
      }
      if (!needStates.every(([, s]) => finished(s))) continue
      const unmet = needStates.find(([, s]) => s !== 'succeeded')
      if (unmet) {
        pending.splice(pending.indexOf(job), 1)
        setJob(job, 'skipped', {
          reason: `needs job "${unmet[0]}", which ${pastTense(unmet[1])}`,
          finishedAt: Date.now(),
        })
        skipSteps(store, created.stepIds.get(job.key)!, 'skipped')
        continue
      }
      const node = pickNode(prepared.nodesFor.get(job.key)!, busy)
      if (!node) continue
      pending.splice(pending.indexOf(job), 1)
      busy.set(node.name, (busy.get(node.name) ?? 0) + 1)
      const p = runJob(job, node)
        .catch(() => {})
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

  const all = [...states.values()]
  const state: RunState = all.includes('failed')
    ? 'failed'
    : all.includes('cancelled') || signal.aborted
      ? 'cancelled'
      : all.every((s) => s === 'succeeded' || s === 'skipped')
        ? 'succeeded'
        : 'failed'
  store.setRunState(runId, state)
  observer.runChanged?.(runId, state)
  return { runId, state }

  async function runJob(job: WorkflowJob, node: FarmNode): Promise<void> {
    const jobId = created.jobIds.get(job.key)!
    const stepIds = created.stepIds.get(job.key)!
    const jobTarget: LogTarget = { runId, jobId, jobKey: job.key, stepIndex: null }
    const image = node.executor === 'docker' ? (job.image ?? node.defaultImage) : null
    setJob(job, 'running', { nodeName: node.name, image, startedAt: Date.now() })
    logs.line(
      jobTarget,
      'system',
      `job ${job.key} on node ${describeNode(node)}${image ? ` in image ${image}` : ''}`,
    )

    const env: Record<string, string> = {
      CI: 'true',
      YARDMASTER: 'true',
      GITHUB_RUN_ID: String(runId),
      GITHUB_JOB: job.key,
      GITHUB_WORKFLOW: workflow.name,
      RUNNER_NAME: node.name,
      ...workflow.env,
      ...job.env,
    }
    const session = prepared.sessions.get(node.name)!
    let environment
    try {
      environment = await session.executor.prepare(
        { instance, runId, jobKey: job.key, image, env },
        (m) => logs.line(jobTarget, 'system', m),
        signal,
      )
    } catch (e) {
      const aborted = signal.aborted
      const reason = aborted
        ? 'the run was cancelled'
        : `could not start the job on ${node.name}: ${(e as Error).message}`
      logs.line(jobTarget, 'system', reason)
      skipSteps(store, stepIds, aborted ? 'cancelled' : 'skipped')
      setJob(job, aborted ? 'cancelled' : 'failed', { reason, finishedAt: Date.now() })
      return
    }

    let failure: { index: number; code: number | null } | null = null
    let cancelled = false
    try {
      for (const step of job.steps) {
        const stepId = stepIds[step.index]!
        if (failure || cancelled) {
          store.updateStep(stepId, { state: failure ? 'skipped' : 'cancelled' })
          continue
        }
        const target: LogTarget = { ...jobTarget, stepIndex: step.index }
        store.updateStep(stepId, { state: 'running', startedAt: Date.now() })
        observer.stepChanged?.(runId, job.key, step.index, step.name, 'running', null)
        let code: number | null
        try {
          code = await environment.runStep(
            { script: step.run, shell: step.shell, env: step.env, workingDirectory: step.workingDirectory },
            (stream, chunk) => logs.write(target, stream, chunk),
            signal,
          )
        } catch (e) {
          logs.line(target, 'system', `the step could not run: ${(e as Error).message}`)
          code = signal.aborted ? null : -1
        }
        logs.endStep(target)
        const state: StepState = code === 0 ? 'succeeded' : code === null ? 'cancelled' : 'failed'
        store.updateStep(stepId, { state, exitCode: code, finishedAt: Date.now() })
        observer.stepChanged?.(runId, job.key, step.index, step.name, state, code)
        if (state === 'failed') failure = { index: step.index, code }
        if (state === 'cancelled') cancelled = true
      }
    } finally {
      await environment.dispose()
    }
    const now = Date.now()
    if (failure) {
      const name = job.steps[failure.index]!.name
      setJob(job, 'failed', {
        exitCode: failure.code,
        reason: `step ${failure.index + 1} "${name}" exited with code ${failure.code}`,
        finishedAt: now,
      })
    } else if (cancelled) setJob(job, 'cancelled', { reason: 'the run was cancelled', finishedAt: now })
    else setJob(job, 'succeeded', { exitCode: 0, reason: null, finishedAt: now })
  }
}

function skipSteps(store: RunStore, stepIds: number[], state: 'skipped' | 'cancelled'): void {
  for (const id of stepIds) store.updateStep(id, { state })
}

function pastTense(s: JobState): string {
  return s === 'failed' ? 'failed' : s === 'cancelled' ? 'was cancelled' : s === 'skipped' ? 'was skipped' : s
}
