/**
 * Orchestrators and their slot claims in the history database: the SQL behind
 * core/orchestrator/slot-claims. Callers wrap what must be atomic in `exclusive` (BEGIN
 * IMMEDIATE), so two processes never read the same free slot.
 */
import type { Db } from './database'
import { jobKeyOf } from '../workflow/matrix'

export type OrchestratorKind = 'console' | 'run'

export interface OrchestratorRow {
  id: string
  kind: OrchestratorKind
  host: string
  pid: number
  startedAt: number
  leaseUntil: number
}

export interface SlotClaimRow {
  id: number
  node: string
  holder: string
  runId: number | null
  jobId: number | null
  claimedAt: number
}

/** Why a job waits for a slot, and its place, as its orchestrator records it (jobs.wait_*). */
export interface RecordedWait {
  jobId: number
  reason: string
  /** The farm's nodes by why none took it. */
  counts: Record<string, number>
  position: number
  since: number
  expectedStart: number | null
}

/** A run failed because its holder died: the workflow jobs that had finished before. */
export interface LostRun {
  runId: number
  finished: string[]
}

export interface LostJob {
  jobId: number
  runId: number
  key: string
}

export class ClaimStore {
  constructor(readonly db: Db) {}

  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  register(o: OrchestratorRow): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO orchestrators (id, kind, host, pid, started_at, lease_until) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(o.id, o.kind, o.host, o.pid, o.startedAt, o.leaseUntil)
  }

  /** Extends the holder's lease; false when it was already reaped (its claims are gone). */
  renew(id: string, leaseUntil: number): boolean {
    return (
      this.db.prepare('UPDATE orchestrators SET lease_until = ? WHERE id = ?').run(leaseUntil, id).changes > 0
    )
  }

  orchestrators(): OrchestratorRow[] {
    return this.db
      .prepare(
        'SELECT id, kind, host, pid, started_at AS startedAt, lease_until AS leaseUntil FROM orchestrators',
      )
      .all() as OrchestratorRow[]
  }

  /** Removes a holder and its claims. */
  unregister(id: string): void {
    this.db.prepare('DELETE FROM slot_claims WHERE holder = ?').run(id)
    this.db.prepare('DELETE FROM orchestrators WHERE id = ?').run(id)
  }

  /** Claims per node, over every live holder. */
  usedSlots(): Map<string, number> {
    const rows = this.db.prepare('SELECT node, COUNT(*) AS n FROM slot_claims GROUP BY node').all() as Array<{
      node: string
      n: number
    }>
    return new Map(rows.map((r) => [r.node, r.n]))
  }

  addClaim(c: Omit<SlotClaimRow, 'id'>): number {
    return Number(
      this.db
        .prepare('INSERT INTO slot_claims (node, holder, run_id, job_id, claimed_at) VALUES (?, ?, ?, ?, ?)')
        .run(c.node, c.holder, c.runId, c.jobId, c.claimedAt).lastInsertRowid,
    )
  }

  removeClaim(id: number): void {
    this.db.prepare('DELETE FROM slot_claims WHERE id = ?').run(id)
  }

  claims(): SlotClaimRow[] {
    return this.db
      .prepare(
        'SELECT id, node, holder, run_id AS runId, job_id AS jobId, claimed_at AS claimedAt FROM slot_claims ORDER BY id',
      )
      .all() as SlotClaimRow[]
  }

  /** Unfinished jobs of the runs a holder ran. */
  unfinishedJobs(holder: string): LostJob[] {
    return this.db
      .prepare(
        `SELECT j.id AS jobId, j.run_id AS runId, j.job_key AS key FROM jobs j JOIN runs r ON r.id = j.run_id
         WHERE r.holder = ? AND j.state IN ('pending','running') ORDER BY j.id`,
      )
      .all(holder) as LostJob[]
  }

  /**
   * Marks a dead holder's unfinished jobs lost, their steps and running attempts with them, and its
   * unfinished runs failed. Returns the jobs, and the runs nobody asked to cancel with the jobs that
   * had finished before the loss (the orchestrator decides whether to queue them again).
   */
  markLost(
    holder: string,
    reason: string,
    at: number,
    /** Runs another orchestrator will take over (they came from the queue): left as they are. */
    takenOver: (runId: number) => boolean = () => false,
  ): { jobs: LostJob[]; runs: LostRun[]; takenOver: number[] } {
    const adopt = (
      this.db
        .prepare(
          "SELECT id FROM runs WHERE holder = ? AND state IN ('queued','running') AND cancel_requested IS NULL",
        )
        .all(holder) as Array<{ id: number }>
    )
      .map((r) => r.id)
      .filter(takenOver)
    if (adopt.length) {
      // Their attempts may run on: the run's next holder takes them over (or fences them).
      // Handed to nobody meanwhile, so this holder's attempts below are only the others'.
      const mark = this.db.prepare('UPDATE runs SET holder = NULL WHERE id = ?')
      for (const id of adopt) mark.run(id)
      this.db
        .prepare(
          `UPDATE attempts SET holder = '' WHERE holder = ? AND state = 'running'
           AND job_id IN (SELECT id FROM jobs WHERE run_id IN (${adopt.map(() => '?').join(',')}))`,
        )
        .run(holder, ...adopt)
    }
    const lost = this.unfinishedJobs(holder)
    const job = this.db.prepare(
      "UPDATE jobs SET state = 'failed', reason = ?, finished_at = ? WHERE id = ? AND state IN ('pending','running')",
    )
    const steps = this.db.prepare(
      `UPDATE steps SET state = CASE state WHEN 'running' THEN 'failed' ELSE 'skipped' END,
         conclusion = CASE state WHEN 'running' THEN 'failure' ELSE 'skipped' END, finished_at = ?
       WHERE job_id = ? AND state IN ('pending','running')`,
    )
    for (const j of lost) {
      job.run(reason, at, j.jobId)
      steps.run(at, j.jobId)
    }
    this.db
      .prepare(
        // What they ran may still run on their nodes: fenced before those take new work.
        "UPDATE attempts SET state = 'lost', reason = ?, finished_at = ?, fence = 1 WHERE holder = ? AND state = 'running'",
      )
      .run(reason, at, holder)
    // A run someone asked to cancel while its holder was dying is not for running again.
    const runIds = this.db
      .prepare(
        "SELECT id FROM runs WHERE holder = ? AND state IN ('queued','running') AND cancel_requested IS NULL",
      )
      .all(holder) as Array<{ id: number }>
    this.db
      .prepare(
        "UPDATE runs SET state = 'failed', finished_at = ? WHERE holder = ? AND state IN ('queued','running')",
      )
      .run(at, holder)
    const keys = this.db.prepare('SELECT id, job_key AS k FROM jobs WHERE run_id = ?')
    const lostIds = new Set(lost.map((j) => j.jobId))
    const runs = runIds.map(({ id }) => {
      const rows = keys.all(id) as Array<{ id: number; k: string }>
      // Lost matrix legs make their whole job run again (and what needs it).
      const again = new Set(rows.filter((r) => lostIds.has(r.id)).map((r) => jobKeyOf(r.k)))
      const finished = [...new Set(rows.map((r) => jobKeyOf(r.k)))].filter((k) => !again.has(k))
      return { runId: id, finished }
    })
    return { jobs: lost, runs, takenOver: adopt }
  }

  /**
   * A run left to be taken over (markLost's takenOver) that could not be: lost after all, as
   * markLost marks a dead holder's runs (its running attempts fenced).
   */
  abandonTakeOver(runId: number, reason: string, at: number): void {
    const holder = `abandoned:${runId}`
    this.db.prepare('UPDATE runs SET holder = ? WHERE id = ?').run(holder, runId)
    this.db
      .prepare(
        "UPDATE attempts SET holder = ? WHERE state = 'running' AND job_id IN (SELECT id FROM jobs WHERE run_id = ?)",
      )
      .run(holder, runId)
    this.markLost(holder, reason, at)
  }

  /** Records why jobs wait (and their place), and clears it for those that no longer wait. */
  setWaits(waits: readonly RecordedWait[], done: readonly number[]): void {
    const set = this.db.prepare(
      'UPDATE jobs SET wait_reason = ?, wait_counts = ?, wait_position = ?, wait_since = ?, wait_expected_start = ? WHERE id = ?',
    )
    const clear = this.db.prepare(
      'UPDATE jobs SET wait_reason = NULL, wait_counts = NULL, wait_position = NULL, wait_since = NULL, wait_expected_start = NULL WHERE id = ?',
    )
    this.db.transaction(() => {
      for (const w of waits)
        set.run(w.reason, JSON.stringify(w.counts), w.position, w.since, w.expectedStart, w.jobId)
      for (const id of done) clear.run(id)
    })()
  }
}
