/**
 * Follows a run from the history: its log lines as they are stored, and its steps and jobs as
 * they move, printed as `yardmaster run` prints them. For a run another process executes (the
 * console's orchestrator), and for `yardmaster logs --follow`.
 */
import type { JobView, RunState } from '../../shared/model'
import type { RunStore } from '../core/store/run-store'
import {
  expectedFinishLine,
  JobPrefixer,
  jobEndLine,
  paint,
  stepEndLine,
  stepStartLine,
  type CliIo,
} from './output'
import { sleep } from '../core/orchestrator/wait'

const DONE: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled'])

export interface FollowOptions {
  /** Only this job's lines. */
  job?: string
  /** How often the history is read. @default 200 */
  pollMs?: number
  signal?: AbortSignal
  /** Reaps dead orchestrators (called every few seconds while following). */
  reap?: () => void
}

/** Prints what is stored of a run and what follows until it ends (or the signal aborts); its final state. */
export async function followRun(
  store: RunStore,
  runId: number,
  io: CliIo,
  opts: FollowOptions = {},
): Promise<RunState> {
  let seq = 0
  const seen = new Map<string, string>()
  let prefix: JobPrefixer | null = null
  let looks = 0
  for (;;) {
    const { run, jobs } = store.getRun(runId)
    prefix ??= new JobPrefixer(
      io,
      jobs.map((j) => j.key),
    )
    for (const line of store.getLogs(runId, seq, 5000)) {
      seq = line.seq
      if (!opts.job || line.jobKey === opts.job) io.out(prefix.line(line.jobKey, line.stream, line.text))
    }
    for (const job of jobs) if (!opts.job || job.key === opts.job) report(job, seen, prefix, io)
    const finish =
      run.state === 'running' && !seen.has('finish') ? expectedFinishLine(run.expectedFinish) : null
    if (finish) {
      seen.set('finish', 'said')
      io.err(paint(io, 2, finish))
    }
    if (DONE.has(run.state)) {
      // Lines stored just before the run ended.
      for (const line of store.getLogs(runId, seq, 5000))
        if (!opts.job || line.jobKey === opts.job) io.out(prefix.line(line.jobKey, line.stream, line.text))
      return run.state
    }
    if (opts.signal?.aborted) return run.state
    // If the process running it died, nobody else may notice: clear it, so the run ends as lost.
    if (++looks % 10 === 0) opts.reap?.()
    await sleep(opts.pollMs ?? 200, opts.signal ?? new AbortController().signal)
  }
}

/** The step and job lines `yardmaster run` prints, for what moved since the last look. */
function report(job: JobView, seen: Map<string, string>, prefix: JobPrefixer, io: CliIo): void {
  const say = (line: string | null) => line && io.out(prefix.line(job.key, 'system', line))
  for (const s of job.steps) {
    const key = `${job.id}/${s.index}`
    // A step that ran between two looks was never seen running: its start line all the same.
    if (!seen.has(`${key}/started`) && s.state !== 'pending' && s.state !== 'skipped') {
      seen.set(`${key}/started`, 'yes')
      say(stepStartLine(s.index, s.name))
    }
    if (seen.get(key) === s.state) continue
    seen.set(key, s.state)
    say(stepEndLine(s.index, s.state, s.exitCode))
  }
  if (seen.get(`${job.id}`) === job.state) return
  seen.set(`${job.id}`, job.state)
  say(jobEndLine(job.state, job.reason))
}
