/**
 * Runs, jobs, steps and log lines in the history database. The only module that knows the SQL.
 */
import { randomUUID } from 'node:crypto'
import type {
  AttemptState,
  AttemptView,
  JobState,
  JobView,
  LogLine,
  LogStream,
  RunDetail,
  RunState,
  RunSummary,
  StepState,
  Priority,
  ReproRecipe,
  StepView,
  WaitingJobView,
} from '../../../shared/model'
import type { Db } from './database'
import type { Leftover } from '../executor/job-environment'
import { attemptTransition, jobTransition, runTransition, stepTransition } from '../orchestrator/lifecycle'

export interface NewRun {
  /** The orchestrator that runs it (slot-claims): when it dies, the run is marked lost. */
  holder?: string
  /** The class its jobs are served in. @default normal */
  priority?: Priority
  workflowName: string
  workflowFile: string
  farmFile: string | null
  jobs: Array<{ key: string; name: string; needs: string[]; runsOn: string[]; steps: string[] }>
}

export interface CreatedRun {
  runId: number
  /** job key -> job row id */
  jobIds: Map<string, number>
  /** job key -> step row ids, by step index */
  stepIds: Map<string, number[]>
}

/** A run an orchestrator takes over from one that died (RunStore.takeOverRun). */
export interface TakenRun extends CreatedRun {
  /** Its job rows as the history has them: the finished ones keep their result. */
  rows: Array<{
    jobId: number
    key: string
    state: JobState
    outputs: Record<string, string>
    nodeName: string | null
  }>
  /** By job row: the attempt the dead orchestrator was running, to take over. */
  running: Map<number, OrphanAttempt>
}

export interface OrphanAttempt {
  attemptId: number
  number: number
  node: string
  /** What it made on its node (JobEnvironment.ref); null when it died before saying. */
  ref: string | null
  /** The last step the history shows started; null when none did. */
  step: number | null
}

export interface JobPatch {
  state?: JobState
  nodeName?: string | null
  image?: string | null
  exitCode?: number | null
  reason?: string | null
  outputs?: Record<string, string>
  startedAt?: number | null
  finishedAt?: number | null
  repro?: ReproRecipe | null
}

/** An attempt to fence, and what the node's executor looks for. */
export interface FenceRecord {
  attemptId: number
  leftover: Leftover
}

export interface NewAttempt {
  jobId: number
  node: string
  claimId: number | null
  holder: string
  at: number
}

export interface StepPatch {
  state?: StepState
  exitCode?: number | null
  conclusion?: string | null
  startedAt?: number | null
  finishedAt?: number | null
}

/** A job waiting for a slot, as its orchestrator recorded it (priority from its queue entry, or normal). */
export type WaitingJobRow = Omit<WaitingJobView, 'priority'> & { priority: string }

export interface NewLogLine {
  runId: number
  jobId: number
  stepIndex: number | null
  attempt?: number | null
  stream: LogStream
  text: string
  at: number
}

interface RunRow {
  id: number
  workflow_name: string
  workflow_file: string
  state: RunState
  created_at: number
  started_at: number | null
  finished_at: number | null
  expected_finish: number | null
  cancel_requested: string | null
  job_count: number
}

interface JobRow {
  id: number
  job_key: string
  name: string
  state: JobState
  needs_json: string
  runs_on_json: string
  node_name: string | null
  image: string | null
  exit_code: number | null
  reason: string | null
  outputs_json: string
  started_at: number | null
  finished_at: number | null
  cancel_requested: string | null
  repro_json: string | null
  log_capped_bytes: number | null
}

interface StepRow {
  job_id: number
  idx: number
  name: string
  state: StepState
  exit_code: number | null
  conclusion: string | null
  started_at: number | null
  finished_at: number | null
}

const CLAIMS = `SELECT c.id AS id, c.group_key AS groupKey, c.run_id AS runId, c.job_id AS jobId, c.state, c.host,
  c.pid, c.cancel_requested AS cancelRequested, r.state AS runState
  FROM concurrency_claims c JOIN runs r ON r.id = c.run_id`

const RUN_COLUMNS = `r.id, r.workflow_name, r.workflow_file, r.state, r.created_at, r.started_at, r.finished_at, r.expected_finish, r.cancel_requested,
  (SELECT count(*) FROM jobs j WHERE j.run_id = r.id) AS job_count`

export interface ConcurrencyClaim {
  id: number
  groupKey: string
  runId: number
  jobId: number | null
  state: 'pending' | 'running'
  host: string
  pid: number
  cancelRequested: string | null
  runState: RunState
}

export class RunNotFoundError extends Error {
  constructor(readonly runId: number) {
    super(`run ${runId} does not exist; list runs with \`yardmaster history\``)
    this.name = 'RunNotFoundError'
  }
}

export class RunStore {
  private readonly insertLog
  /** LOG_ROWS lines in one statement: half the cost per line of one statement each (bench/logs). */
  private readonly insertLogs
  constructor(readonly db: Db) {
    const insert = 'INSERT INTO log_lines (run_id, job_id, step_idx, attempt, stream, text, at) VALUES '
    this.insertLog = db.prepare(insert + '(?, ?, ?, ?, ?, ?, ?)')
    this.insertLogs = db.prepare(insert + Array(LOG_ROWS).fill('(?, ?, ?, ?, ?, ?, ?)').join(', '))
  }

  /** The random id of this history, made on first use. */
  instanceId(): string {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'instance_id'").get() as
      { value: string } | undefined
    if (row) return row.value
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?)").run(randomUUID())
    return this.instanceId()
  }

  /** The run, its jobs and steps, in one transaction: a run is either fully recorded or absent. */
  createRun(run: NewRun, now = Date.now()): CreatedRun {
    return this.db.transaction(() => {
      const runId = Number(
        this.db
          .prepare(
            "INSERT INTO runs (workflow_name, workflow_file, farm_file, state, created_at, holder, priority) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
          )
          .run(
            run.workflowName,
            run.workflowFile,
            run.farmFile,
            now,
            run.holder ?? null,
            run.priority ?? 'normal',
          ).lastInsertRowid,
      )
      const insertJob = this.db.prepare(
        "INSERT INTO jobs (run_id, job_key, name, state, needs_json, runs_on_json) VALUES (?, ?, ?, 'pending', ?, ?)",
      )
      const insertStep = this.db.prepare(
        "INSERT INTO steps (job_id, idx, name, state) VALUES (?, ?, ?, 'pending')",
      )
      const jobIds = new Map<string, number>()
      const stepIds = new Map<string, number[]>()
      for (const job of run.jobs) {
        const jobId = Number(
          insertJob.run(runId, job.key, job.name, JSON.stringify(job.needs), JSON.stringify(job.runsOn))
            .lastInsertRowid,
        )
        jobIds.set(job.key, jobId)
        stepIds.set(
          job.key,
          job.steps.map((name, i) => Number(insertStep.run(jobId, i, name).lastInsertRowid)),
        )
      }
      return { runId, jobIds, stepIds }
    })()
  }

  /**
   * A job found only while the run goes on (a matrix instance): the row and its steps, in one
   * transaction. Returns the job's id and its step ids by index.
   */
  addJob(
    runId: number,
    job: { key: string; name: string; needs: string[]; runsOn: string[]; steps: string[] },
  ): { jobId: number; stepIds: number[] } {
    return this.db.transaction(() => {
      const jobId = Number(
        this.db
          .prepare(
            "INSERT INTO jobs (run_id, job_key, name, state, needs_json, runs_on_json) VALUES (?, ?, ?, 'pending', ?, ?)",
          )
          .run(runId, job.key, job.name, JSON.stringify(job.needs), JSON.stringify(job.runsOn))
          .lastInsertRowid,
      )
      const insertStep = this.db.prepare(
        "INSERT INTO steps (job_id, idx, name, state) VALUES (?, ?, ?, 'pending')",
      )
      return {
        jobId,
        stepIds: job.steps.map((name, i) => Number(insertStep.run(jobId, i, name).lastInsertRowid)),
      }
    })()
  }

  /** Gives a job row its instance key, name and labels once its matrix is known. */
  renameJob(jobId: number, key: string, name: string, runsOn: string[]): void {
    this.db
      .prepare('UPDATE jobs SET job_key = ?, name = ?, runs_on_json = ? WHERE id = ?')
      .run(key, name, JSON.stringify(runsOn), jobId)
  }

  /** Asks a run to stop (polled by the process running it); the reason is shown. */
  requestRunCancel(runId: number, reason: string): void {
    this.db
      .prepare('UPDATE runs SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL')
      .run(reason, runId)
  }

  /** Asks one job to stop (polled by the process running its run); false when it is already done. */
  requestJobCancel(jobId: number, reason: string): boolean {
    return (
      this.db
        .prepare(
          "UPDATE jobs SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL AND state IN ('pending','running')",
        )
        .run(reason, jobId).changes > 0
    )
  }

  /** Cancel requests of a run's jobs: job id -> reason. */
  jobCancelRequests(runId: number): Map<number, string> {
    const rows = this.db
      .prepare(
        'SELECT id, cancel_requested AS reason FROM jobs WHERE run_id = ? AND cancel_requested IS NOT NULL',
      )
      .all(runId) as Array<{ id: number; reason: string }>
    return new Map(rows.map((r) => [r.id, r.reason]))
  }

  runCancelRequest(runId: number): string | null {
    const row = this.db.prepare('SELECT cancel_requested AS r FROM runs WHERE id = ?').get(runId) as
      { r: string | null } | undefined
    return row?.r ?? null
  }

  /** The concurrency claims of a group, oldest first, with whether their run has finished. */
  concurrencyClaims(group: string): ConcurrencyClaim[] {
    return this.db.prepare(`${CLAIMS} WHERE c.group_key = ? ORDER BY c.id`).all(group) as ConcurrencyClaim[]
  }

  /** Runs `fn` in one write transaction (immediate: claims are read then written by several processes). */
  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  addConcurrencyClaim(c: Omit<ConcurrencyClaim, 'id' | 'cancelRequested' | 'runState'>): number {
    return Number(
      this.db
        .prepare(
          'INSERT INTO concurrency_claims (group_key, run_id, job_id, state, host, pid, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(c.groupKey, c.runId, c.jobId, c.state, c.host, c.pid, Date.now()).lastInsertRowid,
    )
  }

  updateConcurrencyClaim(id: number, patch: { state?: 'running'; cancelRequested?: string }): void {
    if (patch.state)
      this.db.prepare('UPDATE concurrency_claims SET state = ? WHERE id = ?').run(patch.state, id)
    if (patch.cancelRequested) {
      this.db
        .prepare(
          'UPDATE concurrency_claims SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL',
        )
        .run(patch.cancelRequested, id)
    }
  }

  removeConcurrencyClaim(id: number): void {
    this.db.prepare('DELETE FROM concurrency_claims WHERE id = ?').run(id)
  }

  concurrencyClaim(id: number): ConcurrencyClaim | null {
    return (this.db.prepare(`${CLAIMS} WHERE c.id = ?`).get(id) as ConcurrencyClaim | undefined) ?? null
  }

  setRunState(runId: number, state: RunState, at = Date.now()): void {
    this.exclusive(() => this.writeRunState(runId, state, at))
  }

  private writeRunState(runId: number, state: RunState, at: number): void {
    const row = this.db.prepare('SELECT state FROM runs WHERE id = ?').get(runId) as
      { state: RunState } | undefined
    if (!row) throw new RunNotFoundError(runId)
    runTransition(runId, row.state, state)
    const column = state === 'running' ? 'started_at' : state === 'queued' ? null : 'finished_at'
    const sql = column
      ? `UPDATE runs SET state = ?, ${column} = ? WHERE id = ?`
      : 'UPDATE runs SET state = ? WHERE id = ?'
    const args = column ? [state, at, runId] : [state, runId]
    this.db.prepare(sql).run(...args)
  }

  /** When a running run is expected to finish (null: unknown); shown only while it runs. */
  setExpectedFinish(runId: number, at: number | null): void {
    this.db.prepare('UPDATE runs SET expected_finish = ? WHERE id = ?').run(at, runId)
  }

  /**
   * A state change is checked and written under the write lock (exclusive: BEGIN IMMEDIATE), so
   * another process (a reaper marking a job lost) cannot change the state in between; writes that
   * change no state take no lock. So for steps, runs and attempts.
   */
  updateJob(jobId: number, patch: JobPatch): void {
    const state = patch.state
    if (state === undefined) return this.writeJob(jobId, patch)
    this.exclusive(() => {
      jobTransition(jobId, this.stateOf('jobs', jobId) as JobState, state)
      this.writeJob(jobId, patch)
    })
  }

  private writeJob(jobId: number, patch: JobPatch): void {
    this.update('jobs', jobId, {
      state: patch.state,
      node_name: patch.nodeName,
      image: patch.image,
      exit_code: patch.exitCode,
      reason: patch.reason,
      outputs_json: patch.outputs === undefined ? undefined : JSON.stringify(patch.outputs),
      repro_json: patch.repro === undefined ? undefined : patch.repro && JSON.stringify(patch.repro),
      started_at: patch.startedAt,
      finished_at: patch.finishedAt,
    })
  }

  /** Records that a job was given a node and a slot, before anything runs there. */
  startAttempt(a: NewAttempt): { id: number; number: number } {
    // Exclusive: it reads, then writes; a deferred transaction would fail at once (SQLITE_BUSY,
    // no wait) when another process wrote in between.
    return this.exclusive(() => {
      const { n } = this.db
        .prepare('SELECT COALESCE(MAX(number), 0) + 1 AS n FROM attempts WHERE job_id = ?')
        .get(a.jobId) as { n: number }
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO attempts (job_id, number, node_name, claim_id, holder, state, started_at)
             VALUES (?, ?, ?, ?, ?, 'running', ?)`,
          )
          .run(a.jobId, n, a.node, a.claimId, a.holder, a.at).lastInsertRowid,
      )
      return { id, number: n }
    })
  }

  endAttempt(id: number, state: AttemptState, reason: string | null, at = Date.now()): void {
    this.exclusive(() => {
      attemptTransition(id, this.stateOf('attempts', id) as AttemptState, state)
      this.db
        .prepare('UPDATE attempts SET state = ?, reason = ?, finished_at = ? WHERE id = ?')
        .run(state, reason, at, id)
    })
  }

  /**
   * Takes over a run whose orchestrator died (it was left running for this, see
   * ClaimStore.markLost): the run is now `holder`'s; its rows and the attempts that were running.
   */
  takeOverRun(runId: number, holder: string): TakenRun {
    return this.exclusive(() => {
      this.db.prepare('UPDATE runs SET holder = ? WHERE id = ?').run(holder, runId)
      const jobs = this.db
        .prepare('SELECT id, job_key, state, outputs_json, node_name FROM jobs WHERE run_id = ? ORDER BY id')
        .all(runId) as Array<{
        id: number
        job_key: string
        state: JobState
        outputs_json: string
        node_name: string | null
      }>
      const steps = this.db
        .prepare(
          'SELECT s.id, s.job_id, s.idx, s.started_at FROM steps s JOIN jobs j ON j.id = s.job_id WHERE j.run_id = ? ORDER BY s.job_id, s.idx',
        )
        .all(runId) as Array<{ id: number; job_id: number; idx: number; started_at: number | null }>
      const attempts = this.db
        .prepare(
          `SELECT a.id, a.job_id, a.number, a.node_name, a.env_ref FROM attempts a JOIN jobs j ON j.id = a.job_id
           WHERE j.run_id = ? AND a.state = 'running'`,
        )
        .all(runId) as Array<{
        id: number
        job_id: number
        number: number
        node_name: string
        env_ref: string | null
      }>
      const jobIds = new Map<string, number>()
      const stepIds = new Map<string, number[]>()
      for (const j of jobs) {
        jobIds.set(j.job_key, j.id)
        stepIds.set(
          j.job_key,
          steps.filter((st) => st.job_id === j.id).map((st) => st.id),
        )
      }
      const running = new Map<number, OrphanAttempt>()
      for (const a of attempts) {
        const started = steps.filter((st) => st.job_id === a.job_id && st.started_at !== null)
        running.set(a.job_id, {
          attemptId: a.id,
          number: a.number,
          node: a.node_name,
          ref: a.env_ref,
          step: started.length ? Math.max(...started.map((st) => st.idx)) : null,
        })
      }
      const rows = jobs.map((j) => ({
        jobId: j.id,
        key: j.job_key,
        state: j.state,
        outputs: JSON.parse(j.outputs_json) as Record<string, string>,
        nodeName: j.node_name,
      }))
      return { runId, jobIds, stepIds, rows, running }
    })
  }

  /** An attempt taken over: it is `holder`'s now, in the slot it was granted. */
  takeOverAttempt(id: number, holder: string, claimId: number): void {
    this.db.prepare('UPDATE attempts SET holder = ?, claim_id = ? WHERE id = ?').run(holder, claimId, id)
  }

  /** What the attempt made on its node (JobEnvironment.ref), so it can be found again. */
  setAttemptRef(id: number, ref: string): void {
    this.db.prepare('UPDATE attempts SET env_ref = ? WHERE id = ?').run(ref, id)
  }

  /** What the attempt made may still run on its node: fence it before the node takes new work. */
  markFence(id: number): void {
    this.db.prepare('UPDATE attempts SET fence = 1 WHERE id = ?').run(id)
  }

  /** Attempts whose leftovers may still run on `node`, oldest first. */
  fencesOn(node: string): FenceRecord[] {
    return (
      this.db
        .prepare(
          `SELECT a.id, a.number, a.env_ref, j.run_id, j.job_key
           FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.node_name = ? AND a.fence = 1 ORDER BY a.id`,
        )
        .all(node) as Array<{
        id: number
        number: number
        env_ref: string | null
        run_id: number
        job_key: string
      }>
    ).map((r) => ({
      attemptId: r.id,
      leftover: {
        instance: this.instanceId(),
        runId: r.run_id,
        jobKey: r.job_key,
        attempt: r.number,
        ref: r.env_ref,
      },
    }))
  }

  /** The job's output went past the farm's per-job log cap (`bytes`): the rest was not kept. */
  markLogCapped(jobId: number, bytes: number): void {
    this.db.prepare('UPDATE jobs SET log_capped_bytes = ? WHERE id = ?').run(bytes, jobId)
  }

  /** Nodes with attempts to fence. */
  nodesToFence(): string[] {
    return (
      this.db.prepare('SELECT DISTINCT node_name FROM attempts WHERE fence = 1').all() as Array<{
        node_name: string
      }>
    ).map((r) => r.node_name)
  }

  /** The attempt's leftovers are gone from its node. */
  fenced(id: number): void {
    this.db.prepare('UPDATE attempts SET fence = 0 WHERE id = ?').run(id)
  }

  updateStep(stepId: number, patch: StepPatch): void {
    const state = patch.state
    if (state === undefined) return this.writeStep(stepId, patch)
    this.exclusive(() => {
      stepTransition(stepId, this.stateOf('steps', stepId) as StepState, state)
      this.writeStep(stepId, patch)
    })
  }

  private writeStep(stepId: number, patch: StepPatch): void {
    this.update('steps', stepId, {
      state: patch.state,
      exit_code: patch.exitCode,
      conclusion: patch.conclusion,
      started_at: patch.startedAt,
      finished_at: patch.finishedAt,
    })
  }

  /** Appends lines in one transaction; returns the seq of the last one. */
  appendLogs(lines: readonly NewLogLine[]): number {
    if (!lines.length) return this.lastSeq()
    return this.db.transaction(() => {
      let last = 0
      let i = 0
      const args: unknown[] = new Array<unknown>(LOG_ROWS * 7)
      for (; i + LOG_ROWS <= lines.length; i += LOG_ROWS) {
        for (let j = 0; j < LOG_ROWS; j++) logArgs(lines[i + j]!, args, j * 7)
        last = Number(this.insertLogs.run(args).lastInsertRowid)
      }
      for (; i < lines.length; i++)
        last = Number(this.insertLog.run(logArgs(lines[i]!, [], 0)).lastInsertRowid)
      return last
    })()
  }

  lastSeq(): number {
    return (this.db.prepare('SELECT coalesce(max(seq), 0) AS s FROM log_lines').get() as { s: number }).s
  }

  /**
   * Records that jobs wait for a concurrency group (reason), or no longer do (null). They have no
   * place in the order of service: the group, not a slot, holds them.
   */
  setGroupWait(jobIds: readonly number[], reason: string | null, at: number): void {
    const set = this.db.prepare(
      'UPDATE jobs SET wait_reason = ?, wait_since = ?, wait_counts = NULL, wait_position = NULL, wait_expected_start = NULL WHERE id = ?',
    )
    this.db.transaction(() => {
      for (const id of jobIds) set.run(reason, reason === null ? null : at, id)
    })()
  }

  /**
   * Jobs that wait, with why and their place (written by their orchestrator): for a slot, or for a
   * concurrency group (their run may not have started yet), those last.
   */
  waitingJobs(): WaitingJobRow[] {
    const rows = this.db
      .prepare(
        `SELECT j.run_id AS runId, j.id AS jobId, j.job_key AS key, COALESCE(r.priority, q.priority, 'normal') AS priority,
                j.wait_since AS since, j.wait_reason AS reason, j.wait_counts AS counts, j.wait_position AS position,
                j.wait_expected_start AS expectedStart
         FROM jobs j JOIN runs r ON r.id = j.run_id LEFT JOIN run_queue q ON q.run_id = r.id
         WHERE j.wait_reason IS NOT NULL AND r.state IN ('queued','running') AND j.state = 'pending'
         ORDER BY j.wait_position IS NULL, j.wait_position, j.id`,
      )
      .all() as Array<Omit<WaitingJobRow, 'counts'> & { counts: string | null }>
    return rows.map((r) => ({
      ...r,
      counts: r.counts ? (JSON.parse(r.counts) as Record<string, number>) : {},
    }))
  }

  /** How long a workflow's job took when it succeeded, newest first (matrix instances as their job). */
  jobDurations(
    workflowFile: string,
    jobKey: string,
    limit = 50,
  ): Array<{ node: string | null; durationMs: number }> {
    return this.db
      .prepare(
        `SELECT j.node_name AS node, j.finished_at - j.started_at AS durationMs
         FROM jobs j JOIN runs r ON r.id = j.run_id
         WHERE r.workflow_file = ? AND (j.job_key = ? OR j.job_key LIKE ? ESCAPE '\\') AND j.state = 'succeeded'
           AND j.started_at IS NOT NULL AND j.finished_at IS NOT NULL
         ORDER BY j.id DESC LIMIT ?`,
      )
      .all(workflowFile, jobKey, `${jobKey.replace(/[\\%_]/g, (c) => `\\${c}`)} (%`, limit) as Array<{
      node: string | null
      durationMs: number
    }>
  }

  /** Runs that got log lines after `seq`. */
  runsWithLogsAfter(seq: number): number[] {
    return (
      this.db.prepare('SELECT DISTINCT run_id AS id FROM log_lines WHERE seq > ?').all(seq) as Array<{
        id: number
      }>
    ).map((r) => r.id)
  }

  /** Workflow files that were run, the most recently run first. */
  workflowFiles(limit = 200): string[] {
    return (
      this.db
        .prepare('SELECT workflow_file AS f FROM runs GROUP BY workflow_file ORDER BY MAX(id) DESC LIMIT ?')
        .all(limit) as Array<{ f: string }>
    ).map((r) => r.f)
  }

  listRuns(limit = 50): RunSummary[] {
    const rows = this.db
      .prepare(`SELECT ${RUN_COLUMNS} FROM runs r ORDER BY r.id DESC LIMIT ?`)
      .all(Math.max(1, Math.min(limit, 1000))) as RunRow[]
    return rows.map(toRunSummary)
  }

  getRun(runId: number): RunDetail {
    const row = this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs r WHERE r.id = ?`).get(runId) as
      RunRow | undefined
    if (!row) throw new RunNotFoundError(runId)
    const jobs = this.db.prepare('SELECT * FROM jobs WHERE run_id = ? ORDER BY id').all(runId) as JobRow[]
    const steps = this.db
      .prepare(
        'SELECT s.* FROM steps s JOIN jobs j ON j.id = s.job_id WHERE j.run_id = ? ORDER BY s.job_id, s.idx',
      )
      .all(runId) as StepRow[]
    const attempts = this.db
      .prepare(
        `SELECT a.job_id, a.number, a.node_name, a.state, a.reason, a.started_at, a.finished_at
         FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.run_id = ? ORDER BY a.job_id, a.number`,
      )
      .all(runId) as AttemptRow[]
    return {
      run: toRunSummary(row),
      jobs: jobs.map((j) =>
        toJobView(
          j,
          steps.filter((s) => s.job_id === j.id),
          attempts.filter((a) => a.job_id === j.id),
          row.cancel_requested,
        ),
      ),
    }
  }

  /**
   * How many lines of one stream of a step's attempt are stored: what an orchestrator taking the
   * job over after a crash skips when it follows the step's output again from its start.
   */
  storedLines(
    at: { runId: number; jobId: number; attempt: number; stepIndex: number },
    stream: 'stdout' | 'stderr',
  ): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM log_lines
           WHERE run_id = ? AND job_id = ? AND attempt = ? AND step_idx = ? AND stream = ?`,
        )
        .get(at.runId, at.jobId, at.attempt, at.stepIndex, stream) as { n: number }
    ).n
  }

  getLogs(runId: number, afterSeq = 0, limit = 5000): LogLine[] {
    const rows = this.db
      .prepare(
        `SELECT l.seq, l.run_id, j.job_key, l.step_idx, l.attempt, l.stream, l.text, l.at
         FROM log_lines l JOIN jobs j ON j.id = l.job_id
         WHERE l.run_id = ? AND l.seq > ? ORDER BY l.seq LIMIT ?`,
      )
      .all(runId, afterSeq, Math.max(1, Math.min(limit, 50_000))) as Array<{
      seq: number
      run_id: number
      job_key: string
      step_idx: number | null
      attempt: number | null
      stream: LogStream
      text: string
      at: number
    }>
    return rows.map((r) => ({
      seq: r.seq,
      runId: r.run_id,
      jobKey: r.job_key,
      stepIndex: r.step_idx,
      attempt: r.attempt,
      stream: r.stream,
      text: r.text,
      at: r.at,
    }))
  }

  /** Changes whenever another connection commits: lets a reader notice writes from another process cheaply. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number
  }

  private stateOf(table: 'jobs' | 'steps' | 'attempts', id: number): string {
    const row = this.db.prepare(`SELECT state FROM ${table} WHERE id = ?`).get(id) as
      { state: string } | undefined
    if (!row) throw new Error(`no ${table.slice(0, -1)} ${id} in this history`)
    return row.state
  }

  private update(table: 'jobs' | 'steps', id: number, fields: Record<string, unknown>): void {
    const set = Object.entries(fields).filter(([, v]) => v !== undefined)
    if (!set.length) return
    this.db
      .prepare(`UPDATE ${table} SET ${set.map(([k]) => `${k} = ?`).join(', ')} WHERE id = ?`)
      .run(...set.map(([, v]) => v), id)
  }
}

function toRunSummary(r: RunRow): RunSummary {
  return {
    id: r.id,
    workflowName: r.workflow_name,
    workflowFile: r.workflow_file,
    state: r.state,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    expectedFinish: r.state === 'running' ? r.expected_finish : null,
    cancelling: r.state === 'running' || r.state === 'queued' ? r.cancel_requested : null,
    jobCount: r.job_count,
  }
}

interface AttemptRow {
  job_id: number
  number: number
  node_name: string
  state: AttemptState
  reason: string | null
  started_at: number
  finished_at: number | null
}

function toJobView(j: JobRow, steps: StepRow[], attempts: AttemptRow[], runCancel: string | null): JobView {
  const going = j.state === 'pending' || j.state === 'running'
  return {
    id: j.id,
    key: j.job_key,
    name: j.name,
    state: j.state,
    needs: JSON.parse(j.needs_json) as string[],
    runsOn: JSON.parse(j.runs_on_json) as string[],
    nodeName: j.node_name,
    image: j.image,
    exitCode: j.exit_code,
    reason: j.reason,
    outputs: JSON.parse(j.outputs_json) as Record<string, string>,
    startedAt: j.started_at,
    finishedAt: j.finished_at,
    steps: steps.map((s): StepView => ({
      index: s.idx,
      name: s.name,
      state: s.state,
      exitCode: s.exit_code,
      conclusion: s.conclusion,
      startedAt: s.started_at,
      finishedAt: s.finished_at,
    })),
    attempts: attempts.map((a): AttemptView => ({
      number: a.number,
      nodeName: a.node_name,
      state: a.state,
      reason: a.reason,
      startedAt: a.started_at,
      finishedAt: a.finished_at,
    })),
    cancelling: going ? (j.cancel_requested ?? runCancel) : null,
    repro: j.repro_json ? (JSON.parse(j.repro_json) as ReproRecipe) : null,
    logCappedAt: j.log_capped_bytes,
  }
}

/** Lines per multi-row insert of appendLogs. */
const LOG_ROWS = 50

/** A line's values in the insert's column order, written into `args` from `at`. */
function logArgs(l: NewLogLine, args: unknown[], at: number): unknown[] {
  args[at] = l.runId
  args[at + 1] = l.jobId
  args[at + 2] = l.stepIndex
  args[at + 3] = l.attempt ?? null
  args[at + 4] = l.stream
  args[at + 5] = l.text
  args[at + 6] = l.at
  return args
}
