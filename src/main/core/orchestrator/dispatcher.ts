/**
 * Gives node slots to the jobs that wait for one, through the pure scheduler.
 *
 * Every run an orchestrator executes asks here for a slot for each job that is ready. A pass
 * (on every request, every release, and every `pollMs` while something waits: other processes
 * free slots without telling this one) puts every waiting job of every run through `schedule()`,
 * with what runs anywhere on the farm (the slot claims of every process in the history) as the
 * running set. Each assignment is then claimed in SQLite (slot-claims.ts); one another process
 * took first just waits for the next pass. Jobs left waiting keep the scheduler's reason, for the
 * queue view and `yardmaster queue`.
 */
import type { FarmNode } from '../farm/farm-model'
import type { Requirements } from '../scheduler/capability-match'
import type { Priority } from '../scheduler/priority'
import {
  schedule,
  type Pending,
  type QueuedJob,
  type RunningJob,
  type SchedulePolicy,
} from '../scheduler/schedule'
import type { SlotClaims } from './slot-claims'
import type { RecordedWait } from '../store/claim-store'
import type { HealthSample } from '../../../shared/model'
import type { HealthThresholds } from '../farm/health/health-probe'
import { effectiveSlots } from '../scheduler/effective-slots'
import { forecastStarts } from '../scheduler/forecast-start'

export interface SlotRequest {
  runId: number
  jobId: number
  /** The job's key in its run (`build`, `test (linux, 20)`). */
  key: string
  /** Workflow file (and later repository): the unit of fair share. */
  pipeline: string
  priority: Priority
  requirements: Requirements
  /** Nodes that may take it: they fit, this process opened them, none quarantined. */
  nodes: readonly FarmNode[]
  /** Longest expected path from this job to the end of its run, itself included (ms). */
  pathMs?: number | null
  /** Its forecast duration (ms), from its history; null when it never ran. */
  expectedMs?: number | null
  /** Stops it to make room for a hotfix (preemption on); it is requeued, never failed. */
  preempt?: (reason: string) => void
}

export interface Grant {
  node: FarmNode
  claimId: number
}

export interface Ticket {
  /** Resolves with the slot, or null when the wait was given up (the signal aborted). */
  granted: Promise<Grant | null>
  /** Why it waits, while it does (the scheduler's words); null once granted or given up. */
  reason(): string | null
}

export interface DispatcherOptions {
  /** How often waiting jobs look for slots freed by other processes. @default 500 */
  pollMs?: number
  /** Read at every pass (the farm file may change). */
  policy?: () => SchedulePolicy
  /** Nodes that take no new jobs now (drained, cordoned, quarantined), with why; read at every pass. */
  outOfService?: () => ReadonlyMap<string, string>
  /**
   * A node's latest health sample and limits, for its slots under pressure (effective-slots.ts);
   * without it every node has its declared slots.
   */
  health?: (node: FarmNode) => {
    sample: Pick<HealthSample, 'load1' | 'cpus' | 'memUsedPct'> | null
    limits: Pick<HealthThresholds, 'loadPerCore' | 'memoryUsedPct'>
  } | null
  /** @default Date.now */
  now?: () => number
  /** Told when what waits, or why, changed (the queue view listens). */
  changed?: () => void
}

interface Waiter {
  id: string
  req: SlotRequest
  since: number
  resolve: (g: Grant | null) => void
  reason: string | null
  /** The farm's nodes by why none took it, from the last pass. */
  counts: Record<string, number>
  position: number
  /** When it is expected to start (forecast-start.ts); null when nothing tells. */
  expectedStart: number | null
}

export class Dispatcher {
  private readonly waiting = new Map<string, Waiter>()
  /** claim id -> what holds it, for the scheduler's view of what runs. */
  private readonly granted = new Map<number, { req: SlotRequest; at: number }>()
  private readonly pollMs: number
  private readonly now: () => number
  private timer: NodeJS.Timeout | null = null
  private due: NodeJS.Immediate | null = null
  private next = 0
  /** Each node's effective slots at the last pass (the hysteresis remembers). */
  private readonly slotsNow = new Map<string, number>()
  /** Claims whose job was asked to stop for a hotfix (asked once). */
  private readonly preempted = new Set<number>()
  /** job id -> reason and place last written, so a pass writes only what changed. */
  private readonly written = new Map<number, string>()

  constructor(
    readonly claims: SlotClaims,
    private readonly opts: DispatcherOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 500
    this.now = opts.now ?? Date.now
  }

  /** Asks for a slot for one job; the pass that follows may grant it at once. */
  request(req: SlotRequest, signal?: AbortSignal): Ticket {
    const id = `w${++this.next}`
    let resolve!: (g: Grant | null) => void
    const granted = new Promise<Grant | null>((r) => (resolve = r))
    const give = (g: Grant | null) => {
      signal?.removeEventListener('abort', giveUp)
      this.waiting.delete(id)
      resolve(g)
    }
    const giveUp = () => {
      if (!this.waiting.has(id)) return
      give(null)
      this.soon()
    }
    const waiter: Waiter = {
      id,
      req,
      since: this.now(),
      resolve: give,
      reason: null,
      counts: {},
      position: 0,
      expectedStart: null,
    }
    if (signal?.aborted) {
      resolve(null)
      return { granted, reason: () => null }
    }
    signal?.addEventListener('abort', giveUp, { once: true })
    this.waiting.set(id, waiter)
    this.soon()
    return {
      granted,
      reason: () => {
        this.flush()
        return this.waiting.has(id) ? waiter.reason : null
      },
    }
  }

  /**
   * A pass on the next turn of the event loop: a run whose 100 matrix jobs become ready at once
   * asks 100 times, and one pass answers them all.
   */
  private soon(): void {
    if (this.due) return
    this.due = setImmediate(() => this.flush())
  }

  /** Runs the pass that is due now (one who reads a reason wants it current). */
  private flush(): void {
    if (!this.due) return
    clearImmediate(this.due)
    this.due = null
    this.safePass()
  }

  /** A pass from a timer: an error (the database busy past its timeout) waits for the next one. */
  private safePass(): void {
    try {
      this.pass()
    } catch (e) {
      for (const w of this.waiting.values())
        w.reason = `could not schedule (${(e as Error).message}); trying again`
    }
  }

  /** Gives a slot back and lets the next job have it. */
  release(claimId: number): void {
    this.granted.delete(claimId)
    this.preempted.delete(claimId)
    this.claims.release(claimId)
    this.soon()
  }

  /** Writes why jobs wait to the history (what changed since the last pass), for other processes. */
  private record(): boolean {
    const waits: RecordedWait[] = []
    const now = new Set<number>()
    for (const w of this.waiting.values()) {
      now.add(w.req.jobId)
      const expectedStart = w.expectedStart === null ? null : Math.round(w.expectedStart / 10_000) * 10_000
      const text = `${w.position}|${w.reason}|${expectedStart}|${JSON.stringify(w.counts)}`
      if (this.written.get(w.req.jobId) === text) continue
      this.written.set(w.req.jobId, text)
      waits.push({
        jobId: w.req.jobId,
        reason: w.reason ?? '',
        counts: w.counts,
        position: w.position,
        since: w.since,
        expectedStart,
      })
    }
    const done = [...this.written.keys()].filter((id) => !now.has(id))
    for (const id of done) this.written.delete(id)
    if (waits.length || done.length) this.claims.recordWaits(waits, done)
    return waits.length > 0 || done.length > 0
  }

  /** Stops looking for slots; waiting jobs stay waiting (their runs give up through their signals). */
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.due) clearImmediate(this.due)
    this.due = null
  }

  /** One scheduling pass over everything that waits in this process. */
  pass(): void {
    if (!this.waiting.size) {
      if (this.record()) this.opts.changed?.()
      this.stop()
      return
    }
    const now = this.now()
    const out = this.opts.outOfService?.() ?? new Map<string, string>()
    const nodes = new Map<string, FarmNode>()
    for (const w of this.waiting.values()) for (const n of w.req.nodes) nodes.set(n.name, n)
    const running: RunningJob[] = this.claims.all().map((c) => {
      const mine = this.granted.get(c.id)
      return mine
        ? {
            id: `c${c.id}`,
            name: `${mine.req.key} (run ${mine.req.runId})`,
            node: c.node,
            pipeline: mine.req.pipeline,
            priority: mine.req.priority,
            startedAt: mine.at,
            expectedMs: mine.req.expectedMs ?? null,
          }
        : // Another process's job: it counts against its node; its priority is not known here.
          {
            id: `c${c.id}`,
            node: c.node,
            pipeline: `holder:${c.holder}`,
            priority: 'normal',
            startedAt: c.claimedAt,
          }
    })
    const queue: QueuedJob[] = [...this.waiting.values()].map((w) => ({
      id: w.id,
      name: `${w.req.key} (run ${w.req.runId})`,
      pipeline: w.req.pipeline,
      priority: w.req.priority,
      readyAt: w.since,
      requirements: w.req.requirements,
      only: new Set(w.req.nodes.map((n) => n.name)),
      pathMs: w.req.pathMs ?? null,
      expectedMs: w.req.expectedMs ?? null,
    }))
    const schedNodes = [...nodes.values()].map((node) => {
      const refuses = out.get(node.name) ?? null
      const h = this.opts.health?.(node) ?? null
      if (!h) return { node, refuses, slots: node.slots }
      const e = effectiveSlots(node, h.sample, h.limits, this.slotsNow.get(node.name) ?? null)
      this.slotsNow.set(node.name, e.slots)
      const perCore = h.sample?.load1 != null && h.sample.cpus ? h.sample.load1 / h.sample.cpus : null
      return { node, refuses, slots: e.slots, slotNote: e.note, loadPerCore: perCore }
    })
    const decision = schedule({
      now,
      queue,
      nodes: schedNodes,
      running,
      policy: this.opts.policy?.(),
    })
    for (const p of decision.preemptions) {
      const claimId = Number(p.job.slice(1))
      const victim = this.granted.get(claimId)
      if (!victim?.req.preempt || this.preempted.has(claimId)) continue
      this.preempted.add(claimId)
      const fix = this.waiting.get(p.for)
      victim.req.preempt(
        `preempted by hotfix job ${fix ? `${fix.req.key} (run ${fix.req.runId})` : p.for}; it runs again when a slot frees`,
      )
    }
    for (const a of decision.assignments) {
      const w = this.waiting.get(a.job)!
      const node = nodes.get(a.node)!
      // The pass saw the claims of a moment ago: claim exactly this node, or wait for the next.
      const claimed = this.claims.claim([node], { runId: w.req.runId, jobId: w.req.jobId })
      if (!claimed) {
        w.reason = `${node.name} was taken by another process; looking again`
        continue
      }
      this.granted.set(claimed.claimId, { req: w.req, at: now })
      w.resolve({ node, claimId: claimed.claimId })
    }
    const byId = new Map(queue.map((q) => [q.id, q]))
    const starts = forecastStarts(
      now,
      decision.pending.map((p) => byId.get(p.job)!),
      schedNodes,
      running,
    )
    decision.pending.forEach((p: Pending, i) => {
      const w = this.waiting.get(p.job)
      if (!w) return
      w.reason = p.reason
      w.counts = p.counts
      w.position = i + 1
      w.expectedStart = starts.get(p.job) ?? null
    })
    const wrote = this.record()
    if (this.waiting.size && !this.timer) {
      this.timer = setInterval(() => this.safePass(), this.pollMs)
      this.timer.unref()
    } else if (!this.waiting.size) this.stop()
    if (wrote || decision.assignments.length) this.opts.changed?.()
  }
}
