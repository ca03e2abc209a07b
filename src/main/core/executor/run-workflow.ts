/**
 * Runs a prepared workflow (prepare-run) on a farm, with GitHub's meaning, recording everything.
 *
 * A job is decided when every job it needs is done: its `if` (with the status functions) runs or
 * skips it; then its matrix expands (now, for dynamic matrices) into instances that ask the
 * dispatcher for a slot, at most `max-parallel` at a time; each grant is written as an attempt
 * before the instance starts on its node, and `fail-fast` cancels the siblings of a failed one.
 */
import { setMaxListeners } from 'node:events'
import { resolve } from 'node:path'
import type { AttemptState, JobState, LogStream, RunState, StepState } from '../../../shared/model'
import type { FarmNode } from '../farm/farm-model'
import { explainRequirements } from '../scheduler/capability-match'
import type { OrphanAttempt, RunStore, TakenRun } from '../store/run-store'
import { NodeMetricsStore } from '../store/node-metrics-store'
import { recordJobOutcome, type NodeLedger } from '../farm/node-admin'
import {
  evaluateExpression,
  evaluateToken,
  truthy,
  type ExpressionContexts,
  type Json,
  type RunStatus,
} from '../workflow/expressions'
import { jobStrategy } from '../workflow/plan'
import type { Workflow, WorkflowJob } from '../workflow/workflow-model'
import { jobKeyOf } from '../workflow/matrix'
import { FailFastCancel, RunCancel, runJobInstance, type JobInstanceResult } from './job-runner'
import { sleep } from '../orchestrator/wait'
import { ConcurrencyGate, concurrencyOf } from '../orchestrator/concurrency-gate'
import { groupTransition, type GroupPhase } from '../orchestrator/lifecycle'
import { LogSink, type LogTarget } from './log-sink'
import { githubContext, type Reused } from './run-contexts'
import { planInstances, type PlannedInstance, type PreparedRun } from './prepare-run'
import { SlotClaims } from '../orchestrator/slot-claims'
import { Dispatcher, type Ticket } from '../orchestrator/dispatcher'
import { expectedFinish, forecastDuration, remainingPaths, type JobProgress } from '../forecast/duration'
import { ClaimStore } from '../store/claim-store'

/** Why a job was stopped to make room for a hotfix: it is requeued, never failed. */
export class Preempted extends Error {
  override name = 'Preempted'
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
  /** Something the user should know that is not a job's output (waiting for a concurrency group). */
  notice?(runId: number, text: string): void
  logsStored?(runId: number, lastSeq: number): void
}

export interface ExecuteOptions {
  store: RunStore
  observer?: RunObserver
  /** Aborting cancels the run: running steps are killed, waiting jobs never start. */
  signal?: AbortSignal
  /** Recorded in history. */
  farmFile?: string | null
  /** How often concurrency claims and cancel requests are polled. @default 500 */
  concurrencyPollMs?: number
  /**
   * Where each job's outcome is counted against its node (infrastructure failures in a row
   * quarantine it). @default the history the run is stored in
   */
  nodeLedger?: NodeLedger
  /**
   * Where jobs wait for node slots: the orchestrator's, shared by the runs it executes, with
   * slots counted across every process sharing the history.
   * @default one of the run's own, registered for the length of the run
   */
  dispatcher?: Dispatcher
  /**
   * Attempts after the first for a job that failed for its node's sake (connection dropped,
   * engine failure; never for its own): on another node when one fits. @default 2
   */
  retries?: number
  /** The first retry's wait; each next one doubles it, with jitter. @default 2000 */
  retryBackoffMs?: number
  /** Told the run's id as soon as it is recorded (the queue links its entry). */
  created?: (runId: number) => void
  /**
   * Go on with this run, whose orchestrator died, instead of recording a new one: its finished
   * jobs keep their results, the attempts it was running are taken over on their nodes (or tried
   * again when they cannot be), the rest runs as usual.
   */
  takeOver?: number
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

interface Instance extends PlannedInstance {
  jobId: number
  stepIds: number[]
  index: number
  state: JobState
  /** Cancels this instance alone (Cancel on one job). */
  abort: AbortController
  /** Nodes where an attempt failed for the node's sake: a retry goes elsewhere when it can. */
  avoid: Set<string>
  /** Attempts made again for the node's sake so far (preemptions do not count). */
  retried: number
  /** The attempt a dead orchestrator was running, to take over on its node before anything else. */
  orphan?: OrphanAttempt
}

/** A workflow job while the run goes on: waiting, then its instances, then done. */
interface Group {
  job: WorkflowJob
  /** acquiring: waiting for its concurrency group. */
  phase: GroupPhase
  /** Gives the group's concurrency claim back, once it is done. */
  release?: () => void
  instances: Instance[]
  queue: Instance[]
  running: number
  /** Instances waiting for a slot (asked the dispatcher). */
  asking: number
  failFast: boolean
  maxParallel: number
  /** When its first instance started (for the run's expected finish). */
  startedAt: number | null
  abort: AbortController
  result: JobState
  outputs: Record<string, string>
}

export async function executeRun(prepared: PreparedRun, opts: ExecuteOptions): Promise<RunResult> {
  const { workflow, params } = prepared
  const { store } = opts
  const observer = opts.observer ?? {}
  // The run stops on the caller's signal, or when asked through the history (a newer run in its
  // concurrency group with cancel-in-progress; later, the UI).
  const runAbort = new AbortController()
  const runSignal = runAbort.signal
  // Every job of a wide matrix listens to the run's signal (and to its group's): not a leak.
  setMaxListeners(0, runSignal)
  // A cancel recorded for this run says why better than the caller's (the console stopping).
  let recorded: number | null = null
  const stopOnCaller = () => {
    const asked = recorded === null ? null : store.runCancelRequest(recorded)
    runAbort.abort(asked ? new RunCancel(asked) : opts.signal?.reason)
  }
  if (opts.signal?.aborted) stopOnCaller()
  opts.signal?.addEventListener('abort', stopOnCaller, { once: true })
  const ownDispatcher = !opts.dispatcher
  const dispatcher =
    opts.dispatcher ??
    new Dispatcher(
      new SlotClaims(new ClaimStore(store.db), {
        leaseLost: () =>
          runAbort.abort(new RunCancel('this process stalled past its lease and another took its slots')),
      }).start(),
      {
        pollMs: opts.concurrencyPollMs,
        policy: () => ({ preemption: prepared.farm.preemption ?? false }),
      },
    )
  const priority = params.priority ?? workflow.priority ?? 'normal'
  // Recorded with its holder in one transaction: a crash right after leaves no run without one.
  const taken =
    opts.takeOver !== undefined
      ? takeOverRows(store, opts.takeOver, dispatcher.claims.holder, workflow)
      : null
  const created =
    taken ??
    store.createRun({
      holder: dispatcher.claims.holder,
      priority,
      workflowName: workflow.name,
      workflowFile: resolve(workflow.file),
      farmFile: opts.farmFile ?? prepared.farm.file,
      jobs: workflow.jobs.map((j) => {
        const planned = prepared.instances.get(j.key)
        const first = planned?.length === 1 ? planned[0] : undefined
        return {
          key: first?.key ?? j.key,
          name: first?.name ?? j.name,
          needs: j.needs,
          runsOn: first?.runsOn ?? [],
          steps: j.steps.map((s) => s.name),
        }
      }),
    })
  const { runId } = created
  recorded = runId
  opts.created?.(runId)
  // Forecasts from this workflow's history: long critical paths start first among jobs ready
  // together, and a waiting job says when a slot is expected to free up.
  const expected = new Map(
    workflow.jobs.map((j) => [j.key, forecastDuration(store.jobDurations(resolve(workflow.file), j.key))]),
  )
  const paths = remainingPaths(workflow.jobs, (k) => expected.get(k) ?? null)
  const instanceId = store.instanceId()
  const retries = Math.max(0, opts.retries ?? 2)
  // 2 s, 4 s, 8 s… (at most a minute), each between half and one and a half of that: retries of
  // jobs that one dropped connection failed together do not all land at once.
  const backoff = (attempt: number) =>
    Math.min(60_000, (opts.retryBackoffMs ?? 2_000) * 2 ** (attempt - 1)) * (0.5 + Math.random())
  const secrets = params.secrets ?? {}
  const logs = new LogSink(store, (t, stream, text) => observer.log?.(t, stream, text), {
    onFlushed: (id, seq) => observer.logsStored?.(id, seq),
    secrets: Object.values(secrets),
    capBytes: prepared.farm.logCapPerJob ?? null,
    onCapped: (t, cap) => store.markLogCapped(t.jobId, cap),
  })
  // What the run records or says besides log lines (reasons, notices) is masked as they are.
  const notice = (text: string): void => observer.notice?.(runId, logs.mask(text))
  const github = githubContext(workflow, runId, params)
  const base: ExpressionContexts = {
    github,
    inputs: prepared.inputs,
    vars: params.vars ?? {},
    secrets,
    matrix: {},
    strategy: {},
  }

  const groups = new Map<string, Group>(
    workflow.jobs.map((job) => [
      job.key,
      {
        job,
        phase: 'waiting',
        instances: [],
        queue: [],
        running: 0,
        asking: 0,
        failFast: true,
        maxParallel: Infinity,
        startedAt: null,
        abort: withoutListenerLimit(new AbortController()),
        result: 'pending',
        outputs: {},
      },
    ]),
  )
  const moveGroup = (g: Group, to: GroupPhase) => {
    groupTransition(g.job.key, g.phase, to)
    g.phase = to
  }
  const rowOf = (job: WorkflowJob) => {
    const planned = prepared.instances.get(job.key)
    const key = planned?.length === 1 ? planned[0]!.key : job.key
    return { key, jobId: created.jobIds.get(key)!, stepIds: created.stepIds.get(key)! }
  }
  const setInstance = (inst: Instance, state: JobState, given: Parameters<RunStore['updateJob']>[1] = {}) => {
    const patch = given.reason ? { ...given, reason: logs.mask(given.reason) } : given
    inst.state = state
    store.updateJob(inst.jobId, { ...patch, state })
    observer.jobChanged?.(runId, inst.key, state, { node: patch.nodeName ?? undefined, reason: patch.reason })
  }
  /** A job row (or matrix instance) a re-run takes from the earlier run instead of running it. */
  const recordReused = (row: { key: string; jobId: number; stepIds: number[] }, reused: Reused) => {
    const reason = `reused from run ${params.reuse!.runId} (not run again)`
    store.updateJob(row.jobId, {
      state: reused.state,
      reason,
      outputs: reused.outputs,
      nodeName: reused.node,
      finishedAt: Date.now(),
    })
    for (const id of row.stepIds) store.updateStep(id, { state: 'skipped', conclusion: 'skipped' })
    observer.jobChanged?.(runId, row.key, reused.state, { reason })
  }
  /** Ends a group that never got instances (skipped, cancelled, or its plan failed). */
  const endGroup = (g: Group, state: JobState, given: string) => {
    const reason = logs.mask(given)
    const row = rowOf(g.job)
    moveGroup(g, 'done')
    g.release?.()
    g.result = state
    store.updateJob(row.jobId, { state, reason, finishedAt: Date.now() })
    for (const id of row.stepIds)
      store.updateStep(id, {
        state: state === 'cancelled' ? 'cancelled' : 'skipped',
        conclusion: state === 'cancelled' ? 'cancelled' : 'skipped',
      })
    observer.jobChanged?.(runId, row.key, state, { reason })
  }
  const needsContext = (job: WorkflowJob) => {
    const needs: Record<string, Json> = {}
    for (const n of job.needs)
      needs[n] = { result: RESULT[groups.get(n)!.result], outputs: groups.get(n)!.outputs }
    return needs
  }

  const gate = new ConcurrencyGate(store, { pollMs: opts.concurrencyPollMs })
  const cancelPoll = setInterval(() => {
    const why = store.runCancelRequest(runId)
    if (why) runAbort.abort(new RunCancel(why))
    const jobs = store.jobCancelRequests(runId)
    if (!jobs.size) return
    for (const g of groups.values())
      for (const inst of g.instances) {
        const reason = jobs.get(inst.jobId)
        if (reason && !inst.abort.signal.aborted) inst.abort.abort(new RunCancel(reason))
      }
  }, opts.concurrencyPollMs ?? 500)
  cancelPoll.unref()
  const cleanups: Array<() => void> = [
    () => clearInterval(cancelPoll),
    () => {
      if (!ownDispatcher) return
      dispatcher.stop()
      dispatcher.claims.stop()
    },
    () => opts.signal?.removeEventListener('abort', stopOnCaller),
  ]

  // When the run is expected to finish, written when it moves by a second or more (every round
  // of the loop below: a job started or ended).
  let finishWritten: number | null | undefined
  const forecastFinish = () => {
    const at = expectedFinish(
      workflow.jobs,
      (k) => expected.get(k) ?? null,
      (k): JobProgress => {
        const g = groups.get(k)!
        if (g.phase === 'done') return { state: 'done' }
        return g.startedAt === null ? { state: 'waiting' } : { state: 'running', startedAt: g.startedAt }
      },
      Date.now(),
    )
    const moved =
      at === null || finishWritten == null ? at !== finishWritten : Math.abs(at - finishWritten) >= 1_000
    if (!moved) return
    finishWritten = at
    store.setExpectedFinish(runId, at)
  }

  // Run-level concurrency: wait for the group before any job starts.
  let runConcurrency: ReturnType<typeof concurrencyOf> = null
  try {
    runConcurrency = concurrencyOf(evaluateToken(workflow.concurrency, base))
  } catch (e) {
    notice(`concurrency could not be evaluated, ignored: ${(e as Error).message}`)
  }
  if (runConcurrency) {
    const group = runConcurrency.group
    const all = [...created.jobIds.values()]
    const got = await gate.acquire(runConcurrency, { runId, jobId: null }, runSignal, (held) => {
      const why = `waiting for concurrency group "${group}" (held by run ${held.runId})`
      store.setGroupWait(all, why, Date.now())
      notice(`waiting: concurrency group "${group}" is held by run ${held.runId}`)
    })
    store.setGroupWait(all, null, Date.now())
    if (got.kind === 'cancelled') {
      for (const g of groups.values()) endGroup(g, 'cancelled', got.reason)
      cleanups.forEach((c) => c())
      store.setRunState(runId, 'cancelled')
      observer.runChanged?.(runId, 'cancelled')
      return { runId, state: 'cancelled' }
    }
    cleanups.push(gate.watch(got.claimId, (reason) => runAbort.abort(new RunCancel(reason))))
    cleanups.push(() => gate.release(got.claimId))
  }

  store.setRunState(runId, 'running')
  forecastFinish()
  observer.runChanged?.(runId, 'running')

  const running = new Set<Promise<void>>()
  // Instances waiting for a slot.
  const tickets = new Map<Instance, Ticket>()
  const ledger = opts.nodeLedger ?? new NodeMetricsStore(store.db)
  // Nodes quarantined while this run goes on: jobs not started yet go elsewhere.
  const quarantined = new Map<string, string>()

  /** Decides a waiting group whose needs are done: skip it, or expand it into instances. */
  const decide = async (g: Group): Promise<void> => {
    const job = g.job
    // Cancelled from the console before its needs were done: it never starts.
    const asked = store.jobCancelRequests(runId).get(rowOf(job).jobId)
    if (asked) return endGroup(g, 'cancelled', asked)
    // Taken over: a job that had finished keeps its result, as recorded.
    const before = taken?.rows.filter((r) => r.key === job.key || jobKeyOf(r.key) === job.key) ?? []
    if (before.length && before.every((r) => FINAL.has(r.state))) {
      moveGroup(g, 'done')
      g.result = groupResult(before.map((r) => r.state))
      for (const r of before) Object.assign(g.outputs, r.outputs)
      return
    }
    const reused = params.reuse?.jobs.get(job.key)
    if (reused) {
      // A re-run takes this job's result from the earlier run instead of running it again.
      moveGroup(g, 'done')
      g.result = reused.state
      Object.assign(g.outputs, reused.outputs)
      recordReused(rowOf(job), reused)
      return
    }
    const needs = needsContext(job)
    const status: RunStatus = {
      success: job.needs.every((n) => groups.get(n)!.result === 'succeeded'),
      failure: job.needs.some((n) => groups.get(n)!.result === 'failed'),
      cancelled: runSignal.aborted,
    }
    let go: boolean
    try {
      go = truthy(evaluateExpression(job.if, { ...base, github: { ...github, job: job.key }, needs }, status))
    } catch (e) {
      return endGroup(g, 'failed', `the job's "if" failed: ${(e as Error).message}`)
    }
    if (!go) {
      const unmet = job.needs.find((n) => groups.get(n)!.result !== 'succeeded')
      if (runSignal.aborted) return endGroup(g, 'cancelled', 'the run was cancelled before the job started')
      return endGroup(
        g,
        'skipped',
        unmet
          ? `needs job "${unmet}", which ${pastTense(groups.get(unmet)!.result)}`
          : `its condition is false: ${job.if}`,
      )
    }
    let jobConcurrency: ReturnType<typeof concurrencyOf> = null
    try {
      jobConcurrency = concurrencyOf(evaluateToken(job.concurrency, { ...base, needs }))
    } catch (e) {
      return endGroup(g, 'failed', `the job's "concurrency" could not be evaluated: ${(e as Error).message}`)
    }
    if (jobConcurrency) {
      // Wait for the group without holding up the rest of the run.
      const setting = jobConcurrency
      moveGroup(g, 'acquiring')
      const row = rowOf(job)
      const p = gate
        .acquire(setting, { runId, jobId: row.jobId }, runSignal, (held) => {
          const why = `waiting for concurrency group "${setting.group}" (held by run ${held.runId})`
          store.setGroupWait([row.jobId], why, Date.now())
          notice(`job ${job.key} waits: concurrency group "${setting.group}" is held by run ${held.runId}`)
        })
        .then(async (got) => {
          store.setGroupWait([row.jobId], null, Date.now())
          if (got.kind === 'cancelled') return endGroup(g, 'cancelled', got.reason)
          g.release = () => gate.release(got.claimId)
          const stop = gate.watch(got.claimId, (reason) => g.abort.abort(new RunCancel(reason)))
          const release = g.release
          g.release = () => {
            stop()
            release()
          }
          await expand(g, needs)
        })
        .finally(() => running.delete(p))
      running.add(p)
      return
    }
    await expand(g, needs)
  }

  /** Expands a decided group into instances (its matrix, now when dynamic) ready to start. */
  const expand = async (g: Group, needs: Record<string, Json>): Promise<void> => {
    const job = g.job
    let planned = prepared.instances.get(job.key) ?? null
    const contexts = { ...base, needs }
    try {
      const strategy = jobStrategy(job, contexts)
      g.failFast = strategy.failFast
      g.maxParallel = strategy.maxParallel ?? Infinity
      if (!planned) {
        // A dynamic matrix or runs-on: plan now, and open the nodes it needs.
        planned = planInstances(job, prepared.farm, contexts)
        for (const p of planned) {
          const open = await Promise.allSettled(p.nodes.map((n) => prepared.sessions.open(n)))
          open.forEach((r) => r.status === 'fulfilled' && prepared.opened.set(r.value.node.name, r.value))
          p.nodes = p.nodes.filter((_, i) => open[i]!.status === 'fulfilled')
        }
      }
    } catch (e) {
      return endGroup(g, 'failed', `could not plan the job: ${(e as Error).message}`)
    }
    const row = rowOf(job)
    g.instances = planned.map((p, index): Instance => {
      // The first instance takes the job's row; the others get rows of their own.
      if (index === 0 && (p.key !== row.key || planned.length > 1))
        store.renameJob(row.jobId, p.key, p.name, p.runsOn)
      const existing = index > 0 && taken?.jobIds.get(p.key)
      const ids =
        index === 0
          ? row
          : existing
            ? { jobId: existing, stepIds: taken!.stepIds.get(p.key)! }
            : store.addJob(runId, {
                key: p.key,
                name: p.name,
                needs: job.needs,
                runsOn: p.runsOn,
                steps: job.steps.map((s) => s.name),
              })
      return {
        ...p,
        jobId: ids.jobId,
        stepIds: ids.stepIds,
        index,
        state: 'pending',
        abort: new AbortController(),
        avoid: new Set<string>(),
        retried: 0,
      }
    })
    g.queue = [...g.instances]
    moveGroup(g, 'running')
    for (const inst of g.instances) {
      const was = taken?.rows.find((r) => r.jobId === inst.jobId)
      if (was && FINAL.has(was.state)) {
        // Taken over: this instance had finished; its result stands.
        g.queue.splice(g.queue.indexOf(inst), 1)
        inst.state = was.state
        Object.assign(g.outputs, was.outputs)
        continue
      }
      const orphan = taken?.running.get(inst.jobId)
      if (orphan) inst.orphan = orphan
      else if (was?.state === 'running')
        restart(inst, 'the orchestrator that ran it stopped before it started')
      const leg = params.reuse?.legs?.get(inst.key)
      if (leg) {
        // Re-run for its failed instances: this one succeeded before and keeps that result.
        g.queue.splice(g.queue.indexOf(inst), 1)
        Object.assign(g.outputs, leg.outputs)
        inst.state = leg.state
        recordReused(inst, leg)
        continue
      }
      if (!inst.nodes.length) {
        g.queue.splice(g.queue.indexOf(inst), 1)
        const reason = `no reachable node can take it: ${explainRequirements(inst.requirements, prepared.farm.nodes)}`
        setInstance(inst, 'failed', { reason, finishedAt: Date.now() })
        for (const id of inst.stepIds) store.updateStep(id, { state: 'skipped', conclusion: 'skipped' })
      }
    }
  }

  const start = (g: Group, inst: Instance, node: FarmNode, claimId: number) => {
    // Recorded before anything runs on the node; ended in finish() with how it ended.
    let attempt: { id: number; number: number }
    const orphan = inst.orphan
    inst.orphan = undefined
    try {
      if (orphan) {
        attempt = { id: orphan.attemptId, number: orphan.number }
        store.takeOverAttempt(orphan.attemptId, dispatcher.claims.holder, claimId)
      } else
        attempt = store.startAttempt({
          jobId: inst.jobId,
          node: node.name,
          claimId,
          holder: dispatcher.claims.holder,
          at: Date.now(),
        })
    } catch (e) {
      // Nothing started: the slot goes back (the run loop records the error).
      dispatcher.release(claimId)
      throw e
    }
    g.queue.splice(g.queue.indexOf(inst), 1)
    g.running++
    g.startedAt ??= Date.now()
    let ended = false
    const endAttempt = (state: AttemptState, reason: string | null) => {
      if (ended) return
      ended = true
      store.endAttempt(attempt.id, state, reason)
    }
    const strategy = {
      'fail-fast': g.failFast,
      'job-index': inst.index,
      'job-total': g.instances.length,
      'max-parallel': Number.isFinite(g.maxParallel) ? g.maxParallel : g.instances.length,
    }
    const p = runJobInstance(
      {
        workflow,
        job: g.job,
        key: inst.key,
        jobId: inst.jobId,
        stepIds: inst.stepIds,
        contexts: { ...base, needs: needsContext(g.job), matrix: inst.matrix, strategy },
        platformImage: inst.requirements.image,
        resources: inst.requirements.resources,
        secrets: Object.values(secrets),
        instance: instanceId,
        runId,
        attempt: attempt.number,
        holder: dispatcher.claims.holder,
        graceMs: (prepared.farm.cancelGraceSeconds ?? 10) * 1000,
        ...(orphan && { takeOver: { ref: orphan.ref, step: orphan.step } }),
      },
      {
        store,
        logs,
        node,
        executor: prepared.opened.get(node.name)!.executor,
        signal: AbortSignal.any([runSignal, g.abort.signal, inst.abort.signal]),
        started: (patch) => setInstance(inst, 'running', patch),
        stepChanged: (i, name, state, code) => observer.stepChanged?.(runId, inst.key, i, name, state, code),
        placed: (ref) => store.setAttemptRef(attempt.id, ref),
        leftBehind: () => store.markFence(attempt.id),
        cleared: () => store.fenced(attempt.id),
      },
    )
      .then((r) => finish(g, inst, node, attempt, endAttempt, r))
      .catch((e: Error) => {
        const reason = `internal error: ${e.message}`
        try {
          endAttempt('failed', logs.mask(reason))
          setInstance(inst, 'failed', { reason, finishedAt: Date.now() })
        } catch {
          // Its record could not be written either: the run's own error path ends it.
        }
        notice(`job ${inst.key}: ${reason}`)
      })
      .finally(() => {
        g.running--
        dispatcher.release(claimId)
        running.delete(p)
      })
    running.add(p)
  }

  /**
   * An attempt ended: decide what becomes of its job. Stopped for a hotfix, or failed for its
   * node's sake with attempts left, it goes back to the queue in a new attempt (another node
   * first); otherwise its end is recorded, as the job's result.
   */
  const finish = (
    g: Group,
    inst: Instance,
    node: FarmNode,
    attempt: { id: number; number: number },
    endAttempt: (state: AttemptState, reason: string | null) => void,
    result: JobInstanceResult,
  ) => {
    let r = result
    if (r.nodeOutcome) {
      const counted = recordJobOutcome(ledger, node.name, r.nodeOutcome)
      if (counted.quarantined) {
        quarantined.set(node.name, counted.quarantined)
        notice(
          `node ${node.name} is quarantined: ${counted.quarantined}. Jobs not started yet go to other nodes; ` +
            `once it is mended: yardmaster node ${node.name} resume`,
        )
      }
    }
    const why = inst.abort.signal.reason
    // Preempted while it ended anyway (its last step done, or failed): its result stands.
    if (why instanceof Preempted && r.state === 'cancelled') {
      endAttempt('preempted', why.message)
      notice(`job ${inst.key} was ${why.message}`)
      return requeue(g, inst, attempt.number, why.message, 0)
    }
    const stopped = runSignal.aborted || g.abort.signal.aborted || inst.abort.signal.aborted
    const retry = r.state === 'failed' && r.retryable && inst.retried < retries && !stopped
    const left = inst.nodes.filter((n) => !quarantined.has(n.name))
    if (retry && !left.length) {
      // Its nodes were quarantined (this failure may have done it): nowhere to try again.
      const names = inst.nodes.map((n) => n.name).join(', ')
      r = { ...r, end: { ...r.end, reason: `${r.end.reason}; not tried again: ${names} quarantined` } }
    } else if (retry) {
      // The node's fault, not the job's: try again, elsewhere when another node fits.
      inst.avoid.add(node.name)
      inst.retried++
      const elsewhere = left.some((n) => !inst.avoid.has(n.name))
      const delay = backoff(inst.retried)
      const reason =
        `attempt ${attempt.number} failed on ${node.name} for the node's sake (${r.end.reason}); ` +
        `attempt ${attempt.number + 1} (retry ${inst.retried} of at most ${retries}) starts in about ${Math.round(delay / 1000)} s` +
        (elsewhere ? ' on another node' : `, on ${node.name} again (no other node fits)`)
      endAttempt(r.lost ? 'lost' : 'failed', r.end.reason)
      notice(`job ${inst.key}: ${reason}`)
      return requeue(g, inst, attempt.number, reason, delay)
    }
    setInstance(inst, r.state, { ...r.end, outputs: r.outputs, repro: r.repro })
    endAttempt(r.state, r.state === 'succeeded' ? null : r.end.reason)
    Object.assign(g.outputs, r.outputs)
    if (r.state === 'failed' && g.failFast && g.instances.length > 1)
      g.abort.abort(new FailFastCancel(inst.key))
  }

  /** A taken-over instance whose attempt is gone: pending again, as if it never started. */
  const restart = (inst: Instance, reason: string) => {
    setInstance(inst, 'pending', {
      reason,
      nodeName: null,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
    })
    for (const id of inst.stepIds)
      store.updateStep(id, {
        state: 'pending',
        exitCode: null,
        conclusion: null,
        startedAt: null,
        finishedAt: null,
      })
  }

  /** Back to the queue as if it never started, saying why in its record and its log; after `delayMs`. */
  const requeue = (g: Group, inst: Instance, after: number, reason: string, delayMs: number) => {
    inst.abort = new AbortController()
    setInstance(inst, 'pending', {
      reason,
      repro: null,
      nodeName: null,
      exitCode: null,
      startedAt: null,
      finishedAt: null,
      outputs: {},
    })
    for (const id of inst.stepIds)
      store.updateStep(id, {
        state: 'pending',
        exitCode: null,
        conclusion: null,
        startedAt: null,
        finishedAt: null,
      })
    // In the job's log, so the record says what became of the attempt before.
    logs.line(
      { runId, jobId: inst.jobId, jobKey: inst.key, stepIndex: null, attempt: after },
      'system',
      reason,
    )
    if (delayMs <= 0) return void g.queue.push(inst)
    // Waiting out the backoff counts as running: the group is not done meanwhile. A cancel ends the wait.
    g.running++
    const p = sleep(delayMs, AbortSignal.any([runSignal, g.abort.signal, inst.abort.signal]))
      .then(() => void g.queue.push(inst))
      .finally(() => {
        g.running--
        running.delete(p)
      })
    running.add(p)
  }

  // Nothing may leave the run "running" in the records: an unexpected error (a database that
  // stays busy, a bug the state machines catch) stops what runs and records the run failed.
  let internal: Error | null = null
  try {
    for (;;) {
      forecastFinish()
      for (const g of groups.values()) {
        if (g.phase === 'waiting' && g.job.needs.every((n) => groups.get(n)!.phase === 'done'))
          await decide(g)
        if (g.phase !== 'running') continue
        for (const inst of [...g.queue]) {
          // Waiting for a slot: a cancel gives the wait up, and the next round cancels it.
          if (tickets.has(inst)) continue
          if (runSignal.aborted || g.abort.signal.aborted || inst.abort.signal.aborted) {
            g.queue.splice(g.queue.indexOf(inst), 1)
            const why = inst.abort.signal.aborted
              ? inst.abort.signal.reason
              : g.abort.signal.aborted
                ? g.abort.signal.reason
                : runSignal.reason
            const reason =
              why instanceof RunCancel ? why.message : 'the run was cancelled before the job started'
            setInstance(inst, 'cancelled', { reason, finishedAt: Date.now() })
            for (const id of inst.stepIds)
              store.updateStep(id, { state: 'cancelled', conclusion: 'cancelled' })
            continue
          }
          if (g.running + g.asking >= g.maxParallel) break
          if (inst.orphan && !inst.nodes.some((n) => n.name === inst.orphan!.node)) {
            // Its node is no longer one the job may use (the farm changed): fenced, and run again.
            const gone = inst.orphan
            inst.orphan = undefined
            store.endAttempt(gone.attemptId, 'lost', `its node ${gone.node} is no longer in the farm for it`)
            store.markFence(gone.attemptId)
            restart(inst, `attempt ${gone.number} was on ${gone.node}, which no longer takes it; run again`)
          }
          const open = inst.nodes.filter((n) => !quarantined.has(n.name))
          const fresh = open.filter((n) => !inst.avoid.has(n.name))
          // An attempt to take over goes back to its own node, whatever else fits.
          const usable = inst.orphan
            ? open.filter((n) => n.name === inst.orphan!.node)
            : fresh.length
              ? fresh
              : open
          if (!usable.length) {
            g.queue.splice(g.queue.indexOf(inst), 1)
            const why = inst.nodes
              .map((n) => `${n.name} (quarantined: ${quarantined.get(n.name)})`)
              .join(', ')
            setInstance(inst, 'failed', { reason: `no node left to take it: ${why}`, finishedAt: Date.now() })
            for (const id of inst.stepIds) store.updateStep(id, { state: 'skipped', conclusion: 'skipped' })
            continue
          }
          const ticket = dispatcher.request(
            {
              runId,
              jobId: inst.jobId,
              key: inst.key,
              pipeline: resolve(workflow.file),
              priority,
              requirements: inst.requirements,
              nodes: usable,
              pathMs: paths.get(g.job.key) ?? null,
              expectedMs: expected.get(g.job.key) ?? null,
              preempt: (reason) => inst.abort.abort(new Preempted(reason)),
            },
            AbortSignal.any([runSignal, g.abort.signal, inst.abort.signal]),
          )
          tickets.set(inst, ticket)
          g.asking++
          const idle = running.size === 0
          const p = ticket.granted
            .then((grant) => {
              tickets.delete(inst)
              g.asking--
              if (grant) start(g, inst, grant.node, grant.claimId)
            })
            .finally(() => running.delete(p))
          running.add(p)
          // Say why it waits when nothing of this run goes on meanwhile (a slot held by another run).
          const why = idle ? ticket.reason() : null
          if (why) notice(`job ${inst.key} waits: ${why}`)
        }
        if (!g.queue.length && g.running === 0 && g.asking === 0) {
          moveGroup(g, 'done')
          g.release?.()
          g.result = groupResult(g.instances.map((i) => i.state))
        }
      }
      if (![...groups.values()].some((g) => g.phase !== 'done')) break
      if (!running.size) {
        // Nothing runs and nothing could start: every remaining job waits on something that cannot happen.
        for (const g of groups.values())
          if (g.phase === 'waiting') endGroup(g, 'skipped', 'its needs never finished')
        continue
      }
      await Promise.race(running)
    }
  } catch (e) {
    internal = e as Error
    runAbort.abort(new RunCancel(`internal error: ${internal.message}`))
    await Promise.allSettled([...running])
    for (const g of groups.values()) {
      const left = g.instances.filter((i) => i.state === 'pending' || i.state === 'running')
      for (const inst of left)
        try {
          setInstance(inst, 'failed', {
            reason: `internal error: ${internal.message}`,
            finishedAt: Date.now(),
          })
        } catch {
          // Already ended meanwhile.
        }
      if (g.phase !== 'done' && !g.instances.length)
        try {
          endGroup(g, 'failed', `internal error: ${internal.message}`)
        } catch {
          // Already ended meanwhile.
        }
      if (g.phase !== 'done') g.result = 'failed'
    }
    notice(`the run stopped on an internal error: ${internal.message}`)
  }
  logs.flush()
  cleanups.forEach((c) => c())

  const failedJobs = [...groups.values()].filter(
    (g) => g.result === 'failed' && !staticTrue(g.job.continueOnError),
  )
  const state: RunState =
    internal || failedJobs.length
      ? 'failed'
      : [...groups.values()].some((g) => g.result === 'cancelled') || runSignal.aborted
        ? 'cancelled'
        : 'succeeded'
  store.setRunState(runId, state)
  observer.runChanged?.(runId, state)
  return { runId, state }
}

const FINAL = new Set<JobState>(['succeeded', 'failed', 'cancelled', 'skipped'])

/** A job's result from its instances' (a job of one instance: its own). */
function groupResult(states: JobState[]): JobState {
  if (states.includes('failed')) return 'failed'
  if (states.includes('cancelled')) return 'cancelled'
  if (states.length && states.every((st) => st === 'skipped')) return 'skipped'
  return 'succeeded'
}

/**
 * The rows of a run taken over (RunStore.takeOverRun), with each workflow job's first row under
 * the job's own key too, as a new run has it (a matrix's first instance took the job's row).
 */
function takeOverRows(store: RunStore, runId: number, holder: string, workflow: Workflow): TakenRun {
  const taken = store.takeOverRun(runId, holder)
  for (const job of workflow.jobs) {
    if (taken.jobIds.has(job.key)) continue
    const first = taken.rows.find((r) => jobKeyOf(r.key) === job.key)
    if (!first) throw new Error(`run ${runId} has no record of job "${job.key}": its workflow changed since`)
    taken.jobIds.set(job.key, first.jobId)
    taken.stepIds.set(job.key, taken.stepIds.get(first.key)!)
  }
  return taken
}

function staticTrue(token: WorkflowJob['continueOnError']): boolean {
  try {
    return truthy(evaluateToken(token, {}))
  } catch {
    return false
  }
}

function pastTense(s: JobState): string {
  return s === 'failed' ? 'failed' : s === 'cancelled' ? 'was cancelled' : s === 'skipped' ? 'was skipped' : s
}

function withoutListenerLimit(c: AbortController): AbortController {
  setMaxListeners(0, c.signal)
  return c
}
