/**
 * The orchestrator: the durable queue of triggered runs, the runs it executes, cancellation and
 * re-runs. Hosted by the Electron main process and `yardmaster serve`; the console and the API
 * are its clients.
 *
 *   trigger ──validate──▶ run_queue (SQLite) ──take──▶ prepare ──▶ execute (executor/run-workflow)
 *                              ▲                                        │ each ready job
 *   a dead holder's entries ───┘                                        ▼
 *                                                  dispatcher (scheduler pass, slot claims with leases)
 *
 * Validation happens before anything is recorded: an unknown file, an invalid workflow, an
 * unknown input or one of the wrong type is refused with the problem (file:line:col where it
 * applies). A queued entry survives a crash: the next orchestrator on the same history takes the
 * entries whose holder is gone.
 */
import { resolve } from 'node:path'
import type { Farm, FarmNode } from '../farm/farm-model'
import type { NodeSessions } from '../executor/node-sessions'
import { executeRun, type RunObserver } from '../executor/run-workflow'
import { secretsForRun } from '../secrets/run-secrets'
import { fenceLeftovers } from '../executor/fencing'
import type { SecretStore } from '../secrets/secret-store'
import { prepareRun } from '../executor/prepare-run'
import { resolveInputs, type Reused, type ReusedState, type RunParameters } from '../executor/run-contexts'
import { isPriority, rankOf, type Priority } from '../scheduler/priority'
import type { Db } from '../store/database'
import { ClaimStore } from '../store/claim-store'
import { QueueStore, type QueueEntry, type Trigger } from '../store/queue-store'
import { RunStore } from '../store/run-store'
import { loadWorkflow, selectJob } from '../workflow/parse-workflow'
import { jobKeyOf } from '../workflow/matrix'
import type { Workflow } from '../workflow/workflow-model'
import type { QueueView } from '../../../shared/model'
import { Dispatcher, type DispatcherOptions } from './dispatcher'
import { SlotClaims } from './slot-claims'
import { RunCancel } from '../executor/job-runner'

export interface OrchestratorOptions {
  db: Db
  /** The farm now (it changes when its file is edited). */
  farm: () => Farm
  sessions: () => NodeSessions
  /** Nodes that take no new jobs now (drained, cordoned, quarantined), with why. */
  unavailable?: () => ReadonlyMap<string, string>
  /** Told of every change the console shows: a run queued, started, finished; a job or step moved; a wait's reason. */
  changed?: (what: { runId?: number; queueId?: number }) => void
  /** Told when log lines of a run it executes were stored (the console follows them live). */
  logsStored?: (runId: number, lastSeq: number) => void
  /** A node's latest health sample and limits: its slots shrink under pressure. */
  health?: DispatcherOptions['health']
  /** How often cancel requests and slots freed elsewhere are looked at. @default 500 */
  pollMs?: number
  heartbeatMs?: number
  leaseMs?: number
  /**
   * console: it takes runs queued by other processes (serve, the app); run: it serves one
   * `yardmaster` command and takes only what it queued itself. @default 'console'
   */
  kind?: 'console' | 'run'
  /** The farm's stored secrets: a run gets those its workflow names. */
  secrets?: SecretStore
  /** How often lost attempts' leftovers are looked for on their nodes. @default 10000 */
  fenceSweepMs?: number
  /** Told when a fence sweep ended (tests). */
  fenced?: () => void
}

export interface TriggerRequest {
  workflowFile: string
  inputs?: Record<string, string>
  event?: string
  priority?: Priority
  /** Extra labels every job's node must carry. */
  labels?: string[]
  /** Run this job alone (and what it needs). */
  job?: string
}

export type RerunMode = { kind: 'all' } | { kind: 'failed' } | { kind: 'job'; job: string }

export class Orchestrator {
  readonly runs: RunStore
  readonly queueStore: QueueStore
  readonly dispatcher: Dispatcher
  private readonly claims: SlotClaims
  /** Runs being prepared or executed. */
  private readonly active = new Set<Promise<void>>()
  private stopped = false
  private started = false
  private readonly claimStore: ClaimStore
  /** Stops the runs it executes (replaced after its lease was lost, so new runs can start). */
  private abort = new AbortController()
  private timer: NodeJS.Timeout | null = null
  private sweeping = false
  /** The runs it executes, with the entry each came from. */
  private readonly executing = new Map<number, QueueEntry>()
  /** Entries this orchestrator queued (one of kind `run` takes only these). */
  private readonly mine = new Set<number>()

  constructor(private readonly opts: OrchestratorOptions) {
    this.runs = new RunStore(opts.db)
    this.queueStore = new QueueStore(opts.db)
    this.claimStore = new ClaimStore(opts.db)
    this.claims = new SlotClaims(this.claimStore, {
      kind: opts.kind ?? 'console',
      heartbeatMs: opts.heartbeatMs,
      leaseMs: opts.leaseMs,
      lost: (jobs) => new Set(jobs.map((j) => j.runId)).forEach((runId) => opts.changed?.({ runId })),
      // Another host reaped it while it stalled: its runs were marked lost and queued again.
      leaseLost: () => {
        this.abort.abort(new RunCancel('this console stalled past its lease; its runs were queued again'))
        this.abort = new AbortController()
      },
    })
    this.dispatcher = new Dispatcher(this.claims, {
      pollMs: opts.pollMs,
      changed: () => opts.changed?.({}),
      policy: () => ({ preemption: opts.farm().preemption ?? false }),
      health: opts.health,
      // A node drained or cordoned while jobs wait for it takes none of them.
      outOfService: opts.unavailable,
    })
  }

  /** Registers, clears what dead holders left, and starts taking queued runs. */
  start(): this {
    this.started = true
    this.claims.start()
    this.claims.reap()
    this.kick()
    void this.sweepFences()
    let round = 0
    const fenceEvery = Math.max(1, Math.round((this.opts.fenceSweepMs ?? 10_000) / (this.opts.pollMs ?? 500)))
    // Entries other processes add (a `yardmaster run` submitting here) are found by looking.
    this.timer = setInterval(() => {
      try {
        this.claims.reap()
        if (this.queueStore.waiting().some((e) => this.takes(e))) this.kick()
        if (++round % fenceEvery === 0) void this.sweepFences()
      } catch {
        // The database is busy past its timeout: the next round looks again.
      }
    }, this.opts.pollMs ?? 500)
    this.timer.unref()
    return this
  }

  /**
   * Fences what lost attempts left on the farm's nodes (a dead orchestrator's jobs, a node that
   * was lost and is back) without waiting for those nodes to take new work, so nothing of theirs
   * runs on unseen. A node that does not answer is tried again at the next sweep; one sweep at a time.
   */
  private async sweepFences(): Promise<void> {
    if (this.sweeping || this.stopped) return
    this.sweeping = true
    try {
      const marked = new Set(this.runs.nodesToFence())
      for (const node of this.opts.farm().nodes.filter((n) => marked.has(n.name))) {
        try {
          // The session is the one the node's jobs share: not ours to close.
          const session = await this.opts.sessions().open(node)
          await fenceLeftovers(this.runs, node.name, session.executor, AbortSignal.timeout(60_000), () => {})
        } catch {
          // Unreachable still: the next sweep (or the node's next job) fences it.
        }
      }
    } catch {
      // The database is busy: the next sweep.
    } finally {
      this.sweeping = false
      this.opts.fenced?.()
    }
  }

  /** Jobs running now in the runs this orchestrator executes (what quitting would cancel or leave). */
  runningJobs(): number {
    let n = 0
    for (const runId of this.executing.keys())
      n += this.runs.getRun(runId).jobs.filter((j) => j.state === 'running').length
    return n
  }

  /** Stops taking work, cancels what runs (recorded as cancelled), and gives every claim back. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    // A run none of whose jobs got a slot yet loses nothing: it is queued again for the next
    // start, and this one is recorded cancelled, saying so. What runs is cancelled.
    for (const [runId, entry] of this.executing) {
      if (!this.runs.getRun(runId).jobs.every((j) => j.state === 'pending')) continue
      const again = this.queueStore.add(entry.workflowFile, entry.trigger, entry.priority, Date.now())
      this.runs.requestRunCancel(
        runId,
        `the console stopped before it started; queued again (entry ${again.id})`,
      )
    }
    this.abort.abort(new RunCancel('the console stopped'))
    await Promise.allSettled([...this.active])
    this.dispatcher.stop()
    this.claims.stop()
  }

  /** Validates and queues a run. Records nothing when the request is refused. */
  async trigger(req: TriggerRequest): Promise<QueueEntry> {
    const file = resolve(req.workflowFile)
    const workflow = await this.validated(file, req.job, req.inputs ?? {})
    // The trigger's class, else the workflow's own (env.YARDMASTER_PRIORITY), else normal.
    const priority = req.priority ?? workflow.priority ?? 'normal'
    if (!isPriority(priority)) throw new TypeError(`priority must be one of hotfix, high, normal, low`)
    const trigger: Trigger = {
      ...(req.inputs && Object.keys(req.inputs).length ? { inputs: req.inputs } : {}),
      ...(req.event ? { event: req.event } : {}),
      ...(req.labels?.length ? { labels: req.labels } : {}),
      ...(req.job ? { job: req.job } : {}),
    }
    const entry = this.queueStore.add(file, trigger, priority, Date.now())
    this.mine.add(entry.id)
    this.opts.changed?.({ queueId: entry.id })
    this.kick()
    return entry
  }

  /** Cancels a run: queued, it leaves the queue; running, its jobs stop and it is recorded cancelled. */
  cancelRun(runId: number, reason = 'cancelled from the console'): void {
    const run = this.runs.getRun(runId).run
    if (run.state !== 'queued' && run.state !== 'running')
      throw new Error(
        `run ${runId} has already ${run.state === 'succeeded' ? 'succeeded' : `ended (${run.state})`}`,
      )
    this.runs.requestRunCancel(runId, reason)
    this.opts.changed?.({ runId })
  }

  /** Cancels one job of a running run; the others go on (those that need it are skipped). */
  cancelJob(runId: number, jobKey: string, reason = 'cancelled from the console'): void {
    const job = this.runs.getRun(runId).jobs.find((j) => j.key === jobKey)
    if (!job) throw new Error(`run ${runId} has no job "${jobKey}"`)
    if (!this.runs.requestJobCancel(job.id, reason))
      throw new Error(`job "${jobKey}" of run ${runId} has already ended (${job.state})`)
    this.opts.changed?.({ runId })
  }

  /** Removes a queued run that has not started, or dismisses one that could not start. */
  dequeue(queueId: number): void {
    if (!this.queueStore.remove(queueId))
      throw new Error(`queue entry ${queueId} is not waiting (started, or unknown)`)
    this.opts.changed?.({ queueId })
  }

  /** Changes the priority of a run that waits in the queue. */
  setPriority(queueId: number, priority: Priority): void {
    if (!isPriority(priority)) throw new TypeError('priority must be one of hotfix, high, normal, low')
    if (!this.queueStore.setPriority(queueId, priority))
      throw new Error(`queue entry ${queueId} is not waiting`)
    this.opts.changed?.({ queueId })
  }

  /**
   * Runs a finished run again, as a new run: every job, only the failed ones (and what needs
   * them), or one job (and what needs it). Jobs not run again keep their earlier result and
   * outputs, as GitHub's re-runs do.
   */
  async rerun(runId: number, mode: RerunMode): Promise<QueueEntry> {
    const { run, jobs } = this.runs.getRun(runId)
    if (run.state === 'queued' || run.state === 'running')
      throw new Error(`run ${runId} is still ${run.state}`)
    const earlier = this.queueStore.ofRun(runId)
    const workflow = await this.validated(
      run.workflowFile,
      earlier?.trigger.job,
      earlier?.trigger.inputs ?? {},
    )
    if (!earlier && workflow.inputs.length)
      throw new Error(
        `run ${runId} was started from a terminal, which does not record its inputs: run it again with ` +
          `yardmaster run ${run.workflowFile} --input NAME=VALUE...`,
      )
    const graph = new Map(workflow.jobs.map((j) => [j.key, j.needs]))
    const byWorkflowJob = groupRows(jobs, workflow)
    let again: Set<string>
    if (mode.kind === 'all') again = new Set(graph.keys())
    else {
      const targets =
        mode.kind === 'job'
          ? [mode.job]
          : [...byWorkflowJob]
              .filter(([, rows]) => rows.some((r) => r.state === 'failed' || r.state === 'cancelled'))
              .map(([k]) => k)
      if (mode.kind === 'job' && !graph.has(mode.job))
        throw new Error(
          `run ${runId} has no job "${mode.job}"; its jobs are: ${[...graph.keys()].join(', ')}`,
        )
      if (!targets.length) throw new Error(`run ${runId} has no failed job to run again`)
      again = dependentsOf(targets, graph)
    }
    const reuse = [...graph.keys()].filter((k) => !again.has(k))
    // As GitHub re-runs failed jobs: of a matrix job that failed, only its failed instances run
    // again; what needs it runs whole.
    const ownFailure = (k: string) => again.has(k) && !(graph.get(k) ?? []).some((n) => again.has(n))
    const legs =
      mode.kind === 'failed'
        ? [...byWorkflowJob]
            .filter(([k, rows]) => ownFailure(k) && rows.some((r) => r.key !== k))
            .flatMap(([, rows]) => rows.filter((r) => r.state === 'succeeded').map((r) => r.key))
        : []
    const { reuseFrom: _earlierReuse, ...given } = earlier?.trigger ?? {}
    const trigger: Trigger = {
      ...given,
      ...(reuse.length || legs.length
        ? { reuseFrom: { runId, jobs: reuse, ...(legs.length ? { legs } : {}) } }
        : {}),
    }
    const entry = this.queueStore.add(
      run.workflowFile,
      trigger,
      earlier?.priority ?? workflow.priority ?? 'normal',
      Date.now(),
    )
    this.mine.add(entry.id)
    this.opts.changed?.({ queueId: entry.id })
    this.kick()
    return entry
  }

  queue(): QueueView {
    return queueView(this.queueStore, this.runs)
  }

  /** Resolves when every run started so far has finished (tests, `yardmaster run`). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.active]
      if (!running.length && !this.queueStore.waiting().some((e) => this.takes(e))) return
      await Promise.allSettled(running)
      if (!running.length) await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Why a queue entry could not start; null while it waits or once it started. */
  startError(queueId: number): string | null {
    return this.queueStore.get(queueId)?.error ?? null
  }

  /** The run a queue entry became, once it started. */
  runOf(queueId: number): number | null {
    return this.queueStore.get(queueId)?.runId ?? null
  }

  /** An entry nobody holds, that this orchestrator serves. */
  private takes(e: QueueEntry): boolean {
    return e.holder === null && (this.opts.kind !== 'run' || this.mine.has(e.id))
  }

  private kick(): void {
    // Not started: it only records (a CLI submitting to the console's orchestrator).
    if (this.stopped || !this.started) return
    try {
      this.takeWaiting()
    } catch {
      // The database is busy past its timeout: the poller looks again.
    }
  }

  /** Takes every entry nobody holds, in order of service, and starts it. */
  private takeWaiting(): void {
    this.queueStore.exclusive(() => this.queueStore.releaseOrphans())
    const free = this.queueStore.exclusive(() => {
      const entries = this.queueStore
        .waiting()
        .filter((e) => this.takes(e))
        .sort(inServiceOrder)
      for (const e of entries) this.queueStore.take(e.id, this.claims.holder)
      return entries
    })
    for (const e of free) this.begin(e)
  }

  private begin(entry: QueueEntry): void {
    let runId: number | null = null
    const p: Promise<void> = this.execute(entry, (id) => {
      runId = id
      this.executing.set(id, entry)
      this.queueStore.started(entry.id, id)
      this.opts.changed?.({ runId: id, queueId: entry.id })
    })
      .catch((e: Error) => {
        // It could not start (no reachable node, the workflow changed on disk): say why in the queue.
        if (runId === null) this.queueStore.failedToStart(entry.id, e.message)
        // A run to take over that could not be stays no one's: lost, what it ran fenced.
        const taken = entry.trigger.takeOver?.runId
        if (taken !== undefined && this.runs.getRun(taken).run.state === 'running')
          this.abandon(taken, e.message)
        this.opts.changed?.({ queueId: entry.id })
      })
      .finally(() => {
        this.active.delete(p)
        if (runId !== null) {
          this.executing.delete(runId)
          this.opts.changed?.({ runId })
        }
      })
    this.active.add(p)
  }

  private async execute(entry: QueueEntry, created: (runId: number) => void): Promise<void> {
    const t = entry.trigger
    const workflow = await this.validated(entry.workflowFile, t.job, t.inputs ?? {})
    const given = this.opts.farm()
    const farm: Farm = t.labels?.length
      ? { ...given, nodes: given.nodes.filter((n) => carries(n, t.labels!)) }
      : given
    const params: RunParameters = {
      priority: entry.priority,
      inputs: t.inputs,
      event: t.event,
      secrets: secretsForRun(this.opts.secrets ?? null, entry.workflowFile),
      unavailable: this.opts.unavailable?.(),
      reuse: t.reuseFrom
        ? this.reused(t.reuseFrom.runId, t.reuseFrom.jobs, t.reuseFrom.legs ?? [], workflow)
        : undefined,
    }
    const prepared = await prepareRun(workflow, farm, this.opts.sessions(), params)
    await executeRun(prepared, {
      store: this.runs,
      signal: this.abort.signal,
      farmFile: given.file,
      dispatcher: this.dispatcher,
      concurrencyPollMs: this.opts.pollMs,
      created,
      observer: this.observer(),
      takeOver: t.takeOver?.runId,
    })
  }

  /** A run this console was to take over, and could not: lost, its running attempts fenced. */
  private abandon(runId: number, why: string): void {
    const reason = `lost: its orchestrator stopped, and the run could not be taken over (${why})`
    this.claimStore.exclusive(() => this.claimStore.abandonTakeOver(runId, reason, Date.now()))
    this.opts.changed?.({ runId })
  }

  private observer(): RunObserver {
    // The console's backend shares this connection, so its watch of the database (which sees
    // other processes' writes) does not see these: say them.
    return {
      runChanged: (runId) => this.opts.changed?.({ runId }),
      jobChanged: (runId) => this.opts.changed?.({ runId }),
      stepChanged: (runId) => this.opts.changed?.({ runId }),
      logsStored: (runId, seq) => this.opts.logsStored?.(runId, seq),
    }
  }

  /** Results of an earlier run's jobs, by workflow job, for a re-run to take instead of running them. */
  private reused(runId: number, keys: string[], legKeys: string[], workflow: Workflow) {
    const all = this.runs.getRun(runId).jobs
    const rows = groupRows(all, workflow)
    const jobs = new Map<string, Reused>()
    const legs = new Map<string, Reused>()
    for (const r of all)
      if (legKeys.includes(r.key) && r.state === 'succeeded')
        legs.set(r.key, { state: 'succeeded', outputs: r.outputs, node: r.nodeName })
    const ended = (s: string) => s === 'succeeded' || s === 'skipped' || s === 'failed' || s === 'cancelled'
    for (const key of keys) {
      const list = rows.get(key) ?? []
      if (!list.length || !list.every((r) => ended(r.state))) continue
      const has = (s: string) => list.some((r) => r.state === s)
      const state: ReusedState = has('failed')
        ? 'failed'
        : has('cancelled')
          ? 'cancelled'
          : list.every((r) => r.state === 'skipped')
            ? 'skipped'
            : 'succeeded'
      jobs.set(key, {
        state,
        outputs: Object.assign({}, ...list.map((r) => r.outputs)),
        node: list[0]!.nodeName,
      })
    }
    return { runId, jobs, legs }
  }

  private async validated(
    file: string,
    job: string | undefined,
    inputs: Record<string, string>,
  ): Promise<Workflow> {
    const workflow = selectJob(await loadWorkflow(file), job)
    resolveInputs(workflow.inputs, inputs)
    return workflow
  }
}

function carries(node: FarmNode, labels: readonly string[]): boolean {
  const have = new Set(node.labels.map((l) => l.toLowerCase()))
  return labels.every((l) => have.has(l.toLowerCase()))
}

/** A run's job rows by the workflow job they belong to (matrix instances are `key (…)`). */
function groupRows<T extends { key: string }>(rows: readonly T[], workflow: Workflow): Map<string, T[]> {
  const out = new Map<string, T[]>(workflow.jobs.map((j) => [j.key, []]))
  for (const r of rows) {
    const key = out.has(r.key) ? r.key : jobKeyOf(r.key)
    out.get(key)?.push(r)
  }
  return out
}

/** The jobs given and every job that needs them, directly or not. */
function dependentsOf(
  targets: readonly string[],
  graph: ReadonlyMap<string, readonly string[]>,
): Set<string> {
  const out = new Set(targets)
  let grew = true
  while (grew) {
    grew = false
    for (const [k, needs] of graph)
      if (!out.has(k) && needs.some((n) => out.has(n))) {
        out.add(k)
        grew = true
      }
  }
  return out
}

/** Queue entries in order of service: class, then first in. */
const inServiceOrder = (a: QueueEntry, b: QueueEntry) =>
  rankOf(a.priority) - rankOf(b.priority) || a.id - b.id

/**
 * What waits, from the history (so every process's waits show, a `yardmaster run` in a terminal
 * too): runs not started in order of service, jobs waiting for a slot, triggers that could not start.
 */
export function queueView(queue: QueueStore, runs: RunStore, failedLimit = 20): QueueView {
  return {
    runs: queue
      .waiting()
      .sort(inServiceOrder)
      .map((e, i) => ({
        queueId: e.id,
        workflowFile: e.workflowFile,
        priority: e.priority,
        submittedAt: e.submittedAt,
        position: i + 1,
      })),
    jobs: runs.waitingJobs().map((j) => ({ ...j, priority: isPriority(j.priority) ? j.priority : 'normal' })),
    failed: queue.failed(failedLimit).map((e) => ({
      queueId: e.id,
      workflowFile: e.workflowFile,
      submittedAt: e.submittedAt,
      error: e.error!,
    })),
  }
}
