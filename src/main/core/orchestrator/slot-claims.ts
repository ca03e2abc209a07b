/**
 * A node's slots, held across every process that shares one history.
 *
 * Each orchestrator (the console's, or a `yardmaster run` in a terminal) registers with a lease
 * and renews it every `heartbeatMs`. Claiming a slot is one BEGIN IMMEDIATE transaction: reap the
 * holders whose lease ran out (or whose process on this host is gone), count the claims on the
 * candidate nodes farm-wide, choose, insert. So two processes never fill one node past its slots.
 *
 * A holder that died frees its slots when reaped, and the jobs it was running are marked lost
 * (failed, with the reason) rather than left "running" forever, in the same transaction as its
 * runs that came from the queue are queued again (requeue-lost). Reattaching to containers still
 * running is the recovery issue's work.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type {
  ClaimStore,
  LostJob,
  OrchestratorKind,
  OrchestratorRow,
  RecordedWait,
  SlotClaimRow,
} from '../store/claim-store'
import { processAlive } from './process-alive'
import { pickNode } from '../scheduler/capability-match'
import { QueueStore } from '../store/queue-store'
import { queueTakeOver, requeueLost } from './requeue-lost'

export interface SlotClaimsOptions {
  /** console: a long-lived orchestrator that takes queued runs. @default 'run' */
  kind?: OrchestratorKind
  /** How often the lease is renewed. @default 3000 */
  heartbeatMs?: number
  /** How long a lease lasts without renewal. @default 15000 */
  leaseMs?: number
  /** @default Date.now */
  now?: () => number
  host?: string
  pid?: number
  /** Is a process on this host alive? (tests fake it) @default process.kill(pid, 0) */
  alive?: (pid: number) => boolean
  /** Told of jobs marked lost when their holder died. */
  lost?: (jobs: LostJob[], reason: string) => void
  /**
   * Told when this holder finds it was reaped (it stalled past its lease and another host took
   * its slots): what it runs must stop, its runs were marked lost and queued again.
   */
  leaseLost?: () => void
}

export interface Claimed {
  claimId: number
  node: string
}

export class SlotClaims {
  readonly holder: string
  private readonly heartbeatMs: number
  private readonly leaseMs: number
  private readonly now: () => number
  private readonly host: string
  private readonly pid: number
  private readonly alive: (pid: number) => boolean
  private readonly lost: NonNullable<SlotClaimsOptions['lost']>
  private readonly kind: OrchestratorKind
  private readonly leaseLost: () => void
  private timer: NodeJS.Timeout | null = null
  private readonly queue: QueueStore

  constructor(
    private readonly store: ClaimStore,
    opts: SlotClaimsOptions = {},
  ) {
    this.holder = randomUUID()
    this.queue = new QueueStore(store.db)
    this.heartbeatMs = opts.heartbeatMs ?? 3_000
    this.leaseMs = opts.leaseMs ?? 15_000
    this.now = opts.now ?? Date.now
    this.host = opts.host ?? hostname()
    this.pid = opts.pid ?? process.pid
    this.alive = opts.alive ?? processAlive
    this.lost = opts.lost ?? (() => {})
    this.kind = opts.kind ?? 'run'
    this.leaseLost = opts.leaseLost ?? (() => {})
  }

  /** Registers this orchestrator and starts renewing its lease. */
  start(): this {
    this.store.exclusive(() => this.register())
    this.timer = setInterval(() => {
      try {
        this.heartbeat()
      } catch {
        // The database is busy for longer than its timeout: the next heartbeat tries again.
      }
    }, this.heartbeatMs)
    this.timer.unref()
    return this
  }

  /** Renews the lease (the timer calls it; tests may too). */
  heartbeat(): void {
    // Reaped while it stalled: it registers again for new work, and what it ran must stop.
    if (this.store.renew(this.holder, this.now() + this.leaseMs)) return
    this.register()
    this.leaseLost()
  }

  private register(): void {
    const now = this.now()
    this.store.register({
      id: this.holder,
      kind: this.kind,
      host: this.host,
      pid: this.pid,
      startedAt: now,
      leaseUntil: now + this.leaseMs,
    })
  }

  /** Stops renewing and gives back every claim. */
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.store.exclusive(() => this.store.unregister(this.holder))
  }

  /** Records why this orchestrator's jobs wait, for `yardmaster queue` and other processes. */
  recordWaits(waits: readonly RecordedWait[], done: readonly number[]): void {
    this.store.setWaits(waits, done)
  }

  /** A live console orchestrator on this history, if one runs (a `yardmaster run` submits to it). */
  console(): OrchestratorRow | null {
    return this.store.exclusive(() => {
      this.reapLocked()
      return this.store.orchestrators().find((o) => o.kind === 'console' && o.id !== this.holder) ?? null
    })
  }

  /**
   * Claims a slot on one of the candidates, counting every process's claims; null when all the
   * candidates' slots are taken.
   */
  claim(
    candidates: ReadonlyArray<{ name: string; slots: number }>,
    job: { runId: number | null; jobId: number | null },
  ): Claimed | null {
    return this.store.exclusive(() => {
      this.reapLocked()
      const node = pickNode(candidates, this.store.usedSlots())?.name ?? null
      if (node === null) return null
      const claimId = this.store.addClaim({ node, holder: this.holder, ...job, claimedAt: this.now() })
      return { claimId, node }
    })
  }

  release(claimId: number): void {
    this.store.removeClaim(claimId)
  }

  /** Claims per node over every live holder, after reaping the dead. */
  used(): Map<string, number> {
    return this.store.exclusive(() => {
      this.reapLocked()
      return this.store.usedSlots()
    })
  }

  /** Every live claim, of every holder, after reaping the dead. */
  all(): SlotClaimRow[] {
    return this.store.exclusive(() => {
      this.reapLocked()
      return this.store.claims()
    })
  }

  /** Reaps dead holders now (a console does it on start, so a crash is cleared at once). */
  reap(): void {
    this.store.exclusive(() => this.reapLocked())
  }

  private reapLocked(): void {
    const now = this.now()
    for (const o of this.store.orchestrators()) {
      if (o.id === this.holder) continue
      const here = o.host === this.host
      const gone = here && o.pid !== this.pid && !this.alive(o.pid)
      // A process on this host that is alive only stalled (a laptop asleep): its lease is not
      // the question, its pid is. Leases decide for holders on other hosts.
      if (!gone && (here || o.leaseUntil >= now)) continue
      const reason = gone
        ? `lost: the Yardmaster process running it (pid ${o.pid}) stopped`
        : `lost: the Yardmaster process running it (pid ${o.pid} on ${o.host}) stopped renewing its lease`
      const lost = this.store.markLost(o.id, reason, now, (runId) => this.queue.ofRun(runId) !== null)
      this.store.unregister(o.id)
      for (const runId of lost.takenOver) queueTakeOver(this.queue, runId, now)
      for (const run of lost.runs) requeueLost(this.queue, run, now)
      if (lost.jobs.length) this.lost(lost.jobs, reason)
    }
  }
}
