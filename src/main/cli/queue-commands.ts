/**
 * `yardmaster queue`, `logs`, `cancel` and `rerun`: the queue and runs as the history records
 * them, whichever process executes them.
 */
import { ClaimStore } from '../core/store/claim-store'
import { SlotClaims } from '../core/orchestrator/slot-claims'
import { openDatabase } from '../core/store/database'
import { QueueStore } from '../core/store/queue-store'
import { RunStore } from '../core/store/run-store'
import { EXIT, UsageError, type ParsedArgs } from './args'
import { reportFollowed, submitAndFollow } from './orchestrated'
import { queueView } from '../core/orchestrator/orchestrator'
import { inAbout, paint, type CliIo } from './output'
import { followRun } from './run-follower'
import { formatTable } from './text-table'
import { countsLine } from '../../shared/wait-counts'

export function queueCommand(args: ParsedArgs, io: CliIo): number {
  const db = openDatabase(args.dataDir)
  try {
    // Clear what dead orchestrators left first, so nothing shows as waiting that never will.
    new SlotClaims(new ClaimStore(db)).reap()
    const { runs: waiting, jobs, failed } = queueView(new QueueStore(db), new RunStore(db), 5)
    if (args.json) {
      io.out(JSON.stringify({ runs: waiting, jobs, failed }) + '\n')
      return EXIT.ok
    }
    if (!waiting.length && !jobs.length)
      io.out('nothing waits: every triggered run has started and every job has a slot\n')
    if (jobs.length) {
      io.out('Waiting jobs:\n')
      io.out(
        formatTable(
          ['#', 'RUN', 'JOB', 'PRIORITY', 'WAITING', 'EXPECTED', 'WHY'],
          jobs.map((j) => [
            j.position === null ? '-' : String(j.position),
            String(j.runId),
            j.key,
            j.priority,
            ago(j.since),
            inAbout(j.expectedStart),
            countsLine(j.counts) ? `${j.reason} [nodes: ${countsLine(j.counts)}]` : j.reason,
          ]),
        ),
      )
    }
    if (waiting.length) {
      io.out(`${jobs.length ? '\n' : ''}Runs waiting to start:\n`)
      io.out(
        formatTable(
          ['#', 'ENTRY', 'PRIORITY', 'QUEUED', 'WORKFLOW'],
          waiting.map((e) => [
            String(e.position),
            String(e.queueId),
            e.priority,
            ago(e.submittedAt),
            e.workflowFile,
          ]),
        ),
      )
    }
    for (const f of failed)
      io.err(paint(io, 33, `entry ${f.queueId} (${f.workflowFile}) could not start: ${f.error}\n`))
    return EXIT.ok
  } finally {
    db.close()
  }
}

/** `yardmaster logs <run> [--job ID] [--follow]`: as `gh run view --log` prints a run's log. */
export async function logsCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const runId = runIdOf(args.positionals[0], 'logs')
  const db = openDatabase(args.dataDir)
  try {
    const store = new RunStore(db)
    const { jobs } = existingRun(store, runId)
    if (args.job && !jobs.some((j) => j.key === args.job))
      throw new UsageError(
        `run ${runId} has no job "${args.job}"; its jobs are: ${jobs.map((j) => j.key).join(', ')}`,
      )
    if (args.follow) {
      const claims = new SlotClaims(new ClaimStore(db))
      const state = await followRun(store, runId, io, { job: args.job, signal, reap: () => claims.reap() })
      io.err(`run ${runId} ${state}\n`)
      return EXIT.ok
    }
    const steps = new Map(jobs.map((j) => [j.key, j.steps]))
    let seq = 0
    for (;;) {
      const lines = store.getLogs(runId, seq, 5000)
      for (const l of lines) {
        seq = l.seq
        if (args.job && l.jobKey !== args.job) continue
        const step =
          l.stepIndex === null
            ? 'Set up job'
            : (steps.get(l.jobKey)?.[l.stepIndex]?.name ?? `step ${l.stepIndex + 1}`)
        io.out(`${l.jobKey}\t${step}\t${new Date(l.at).toISOString()} ${l.text}\n`)
      }
      if (lines.length < 5000) return EXIT.ok
    }
  } finally {
    db.close()
  }
}

/** `yardmaster cancel <run>[/<job>]` */
export function cancelCommand(args: ParsedArgs, io: CliIo): number {
  const target = args.positionals[0]
  if (!target) throw new UsageError('which run? usage: yardmaster cancel <run>[/<job>]')
  const slash = target.indexOf('/')
  const runId = runIdOf(slash < 0 ? target : target.slice(0, slash), 'cancel')
  const jobKey = slash < 0 ? null : target.slice(slash + 1)
  const db = openDatabase(args.dataDir)
  try {
    new SlotClaims(new ClaimStore(db)).reap()
    const store = new RunStore(db)
    const { run, jobs } = existingRun(store, runId)
    if (run.state !== 'running' && run.state !== 'queued') {
      io.err(`run ${runId} has already ended (${run.state}); nothing to cancel\n`)
      return EXIT.invalid
    }
    const reason = 'cancelled from the terminal (yardmaster cancel)'
    if (jobKey === null) {
      store.requestRunCancel(runId, reason)
      io.err(`run ${runId}: cancel requested; the process running it stops its jobs\n`)
      return EXIT.ok
    }
    const job = jobs.find((j) => j.key === jobKey)
    if (!job)
      throw new UsageError(
        `run ${runId} has no job "${jobKey}"; its jobs are: ${jobs.map((j) => j.key).join(', ')}`,
      )
    if (!store.requestJobCancel(job.id, reason)) {
      io.err(`job "${jobKey}" of run ${runId} has already ended (${job.state}); nothing to cancel\n`)
      return EXIT.invalid
    }
    io.err(`run ${runId} job ${jobKey}: cancel requested\n`)
    return EXIT.ok
  } finally {
    db.close()
  }
}

/** `yardmaster rerun <run> [--failed | --job ID] [--json]` */
export async function rerunCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const runId = runIdOf(args.positionals[0], 'rerun')
  if (args.failed && args.job) throw new UsageError('rerun takes --failed or --job ID, not both')
  const mode = args.failed
    ? { kind: 'failed' as const }
    : args.job
      ? { kind: 'job' as const, job: args.job }
      : { kind: 'all' as const }
  const done = await submitAndFollow(
    args,
    io,
    signal,
    (o) => o.rerun(runId, mode),
    (id) => io.err(paint(io, 2, `run ${id} started: a re-run of run ${runId}\n`)),
  )
  return reportFollowed(args, io, done)
}

function runIdOf(text: string | undefined, command: string): number {
  if (!text || !/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(
      `${command}: give a run number, as \`yardmaster history\` lists them${text ? `, not "${text}"` : ''}`,
    )
  return Number(text)
}

function existingRun(store: RunStore, runId: number) {
  try {
    return store.getRun(runId)
  } catch {
    throw new UsageError(`there is no run ${runId} in this history; \`yardmaster history\` lists them`)
  }
}

function ago(at: number): string {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000))
  return s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`
}
