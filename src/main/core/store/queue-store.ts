/**
 * The durable run queue in the history database: runs triggered and not started yet. The SQL
 * behind core/orchestrator/orchestrator.
 */
import type { Priority } from '../scheduler/priority'
import type { Db } from './database'

/** What a trigger asks for. Never holds a secret: it is stored as it is. */
export interface Trigger {
  inputs?: Record<string, string>
  event?: string
  /** Only these labels' nodes may take the run's jobs (narrows placement). */
  labels?: string[]
  /** Run this job alone (and what it needs). */
  job?: string
  /**
   * Jobs to take from an earlier run instead of running them again (a re-run); `legs`: matrix
   * instances that succeeded there, of jobs re-run for their failed instances only.
   */
  reuseFrom?: { runId: number; jobs: string[]; legs?: string[] }
  /** Go on with this run, whose orchestrator died: its finished jobs stand, its running attempts are taken over. */
  takeOver?: { runId: number }
}

export interface QueueEntry {
  id: number
  workflowFile: string
  trigger: Trigger
  priority: Priority
  submittedAt: number
  holder: string | null
  runId: number | null
  error: string | null
}

interface Row {
  id: number
  workflowFile: string
  triggerJson: string
  priority: Priority
  submittedAt: number
  holder: string | null
  runId: number | null
  error: string | null
}

const SELECT = `SELECT id, workflow_file AS workflowFile, trigger_json AS triggerJson, priority,
  submitted_at AS submittedAt, holder, run_id AS runId, error FROM run_queue`

const entry = (r: Row): QueueEntry => {
  const { triggerJson, ...rest } = r
  return { ...rest, trigger: JSON.parse(triggerJson) as Trigger }
}

export class QueueStore {
  constructor(readonly db: Db) {}

  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  add(workflowFile: string, trigger: Trigger, priority: Priority, at: number): QueueEntry {
    const id = Number(
      this.db
        .prepare(
          'INSERT INTO run_queue (workflow_file, trigger_json, priority, submitted_at) VALUES (?, ?, ?, ?)',
        )
        .run(workflowFile, JSON.stringify(trigger), priority, at).lastInsertRowid,
    )
    return this.get(id)!
  }

  get(id: number): QueueEntry | null {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Row | undefined
    return r ? entry(r) : null
  }

  /** Entries not started and not failed, oldest first. */
  waiting(): QueueEntry[] {
    return (
      this.db.prepare(`${SELECT} WHERE run_id IS NULL AND error IS NULL ORDER BY id`).all() as Row[]
    ).map(entry)
  }

  /** Entries that could not start, newest first. */
  failed(limit = 20): QueueEntry[] {
    return (
      this.db.prepare(`${SELECT} WHERE error IS NOT NULL ORDER BY id DESC LIMIT ?`).all(limit) as Row[]
    ).map(entry)
  }

  take(id: number, holder: string): void {
    this.db.prepare('UPDATE run_queue SET holder = ? WHERE id = ?').run(holder, id)
  }

  /** Gives the entries of holders no longer registered back to the queue. */
  releaseOrphans(): number {
    return this.db
      .prepare(
        'UPDATE run_queue SET holder = NULL WHERE run_id IS NULL AND holder IS NOT NULL AND holder NOT IN (SELECT id FROM orchestrators)',
      )
      .run().changes
  }

  started(id: number, runId: number): void {
    this.db.prepare('UPDATE run_queue SET run_id = ? WHERE id = ?').run(runId, id)
  }

  failedToStart(id: number, error: string): void {
    this.db.prepare('UPDATE run_queue SET error = ?, holder = NULL WHERE id = ?').run(error, id)
  }

  setPriority(id: number, priority: Priority): boolean {
    return (
      this.db
        .prepare(
          'UPDATE run_queue SET priority = ? WHERE id = ? AND run_id IS NULL AND error IS NULL AND holder IS NULL',
        )
        .run(priority, id).changes > 0
    )
  }

  /** Removes an entry that did not start: one waiting, or one that could not start (dismissed). */
  remove(id: number): boolean {
    // Not one an orchestrator took and is preparing: it would run all the same.
    return (
      this.db.prepare('DELETE FROM run_queue WHERE id = ? AND run_id IS NULL AND holder IS NULL').run(id)
        .changes > 0
    )
  }

  /** The entry a run was started from (its trigger, for a re-run). */
  ofRun(runId: number): QueueEntry | null {
    const r = this.db.prepare(`${SELECT} WHERE run_id = ?`).get(runId) as Row | undefined
    return r ? entry(r) : null
  }
}
