import { useStore } from 'zustand'
import type { JobView, RunSummary } from '../../../shared/model'
import type { AppStore } from '../state/app-store'
import type { QueueStore } from '../state/queue-store'
import { duration, expectedIn, when } from '../format'
import { LogView } from './LogView'
import { ReproView } from './ReproRecipe'
import { StateBadge } from './StateBadge'
import { ActionError, useAction } from './use-action'
import { formatBytes } from '../../../shared/format-bytes'

export function RunView({ store, queue }: { store: AppStore; queue: QueueStore }) {
  const detail = useStore(store, (s) => s.detail)
  const logJob = useStore(store, (s) => s.logJob)
  const showJob = useStore(store, (s) => s.showJob)
  if (!detail) return <div className="empty">Select a run to see its jobs and logs.</div>
  const { run, jobs } = detail
  return (
    <section className="run-view" aria-label={`Run ${run.id}`}>
      <header className="run-header">
        <h2>
          <span className="run-id">#{run.id}</span> {run.workflowName}
        </h2>
        <div className="run-facts">
          <StateBadge state={run.state} cancelling={run.cancelling} />
          <span>started {when(run.startedAt)}</span>
          <span>took {duration(run.startedAt, run.finishedAt)}</span>
          {run.expectedFinish !== null && (
            <span title="From the past durations of its jobs">
              expected to finish {expectedIn(run.expectedFinish)}
            </span>
          )}
          <span className="path" title={run.workflowFile}>
            {run.workflowFile}
          </span>
        </div>
        <RunActions
          key={run.id}
          run={run}
          failed={jobs.some((j) => j.state === 'failed' || j.state === 'cancelled')}
          queue={queue}
        />
      </header>
      <div className="jobs" role="list" aria-label="Jobs">
        {inWorkflowOrder(jobs).map((job) => (
          <div className="job-slot" key={job.id} role="listitem" data-job={job.key}>
            <JobCard
              job={job}
              active={logJob === job.key}
              onSelect={() => showJob(logJob === job.key ? null : job.key)}
            />
            {run.state === 'running' && (job.state === 'running' || job.state === 'pending') && (
              <CancelJob runId={run.id} job={job} queue={queue} />
            )}
            {job.state === 'failed' && job.repro && <ReproView recipe={job.repro} />}
          </div>
        ))}
      </div>
      <LogView store={store} />
    </section>
  )
}

function JobCard({ job, active, onSelect }: { job: JobView; active: boolean; onSelect: () => void }) {
  return (
    <button className={active ? 'job active' : 'job'} onClick={onSelect} title="Show only this job's log">
      <div className="job-head">
        <strong>{job.name}</strong>
        <StateBadge state={job.state} cancelling={job.cancelling} />
      </div>
      <div className="job-meta">
        <span>
          node: {job.nodeName ?? '—'}
          {job.image ? ` · ${job.image}` : ''}
        </span>
        <span>{duration(job.startedAt, job.finishedAt)}</span>
      </div>
      {job.needs.length > 0 && <div className="job-meta">needs: {job.needs.join(', ')}</div>}
      <ol className="steps">
        {job.steps.map((s) => (
          <li key={s.index} className={`step state-${s.state}`}>
            <StateBadge state={s.state} /> {s.name}
            {s.exitCode !== null && s.exitCode !== 0 && <span className="exit"> exit {s.exitCode}</span>}
            {s.state === 'failed' && s.conclusion === 'success' && (
              <span className="allowed" title="continue-on-error: the job went on">
                {' '}
                · allowed to fail
              </span>
            )}
          </li>
        ))}
      </ol>
      {job.reason && <div className="reason">{job.reason}</div>}
      {job.logCappedAt !== null && (
        <div className="reason log-capped" title="logCapPerJob in the farm file">
          log capped at {formatBytes(job.logCappedAt)}: later output was not kept
        </div>
      )}
      {job.attempts.length > 1 && (
        <ol className="attempts" title="Each time the job was given a node">
          {attemptLines(job).map((line, i) => (
            <li key={i}>{line}</li>
          ))}
        </ol>
      )}
    </button>
  )
}

/** Cancel while the run goes on; Re-run and Re-run failed once it has ended. */
function RunActions({ run, failed, queue }: { run: RunSummary; failed: boolean; queue: QueueStore }) {
  const act = useAction(async (f: () => Promise<unknown>) => f())
  const live = run.state === 'queued' || run.state === 'running'
  return (
    <div className="run-actions">
      {live ? (
        <button
          className="danger"
          disabled={act.busy || run.cancelling !== null}
          title={run.cancelling ?? undefined}
          onClick={() => void act.run(() => queue.getState().cancelRun(run.id))}
        >
          {run.cancelling !== null ? 'Cancelling…' : 'Cancel run'}
        </button>
      ) : (
        <>
          <button
            disabled={act.busy}
            onClick={() => void act.run(() => queue.getState().rerun(run.id, 'all'))}
          >
            Re-run
          </button>
          {failed && (
            <button
              disabled={act.busy}
              onClick={() => void act.run(() => queue.getState().rerun(run.id, 'failed'))}
            >
              Re-run failed
            </button>
          )}
        </>
      )}
      {act.result !== null && !live && (
        <span className="notice" role="status">
          queued again: it shows in Queue, then as a new run
        </span>
      )}
      <ActionError error={act.error} />
    </div>
  )
}

function CancelJob({ runId, job, queue }: { runId: number; job: JobView; queue: QueueStore }) {
  const act = useAction(() => queue.getState().cancelJob(runId, job.key))
  return (
    <div className="job-actions">
      <button
        className="danger small"
        disabled={act.busy || act.result !== null || job.cancelling !== null}
        onClick={() => void act.run()}
      >
        {act.result !== null || job.cancelling !== null ? 'Cancelling…' : `Cancel ${job.name}`}
      </button>
      <ActionError error={act.error} />
    </div>
  )
}

/** One line per attempt, first to last: "attempt 1 on n2: preempted (preempted by hotfix job …)". */
export function attemptLines(job: JobView): string[] {
  return job.attempts.map((a) => {
    const why = a.reason && a.state !== 'succeeded' ? `: ${a.reason}` : ''
    return `attempt ${a.number} on ${a.nodeName}, ${a.state}${why}`
  })
}

/**
 * Matrix instances are recorded when their job is reached, after the other jobs: keep each
 * instance next to its siblings, in the order the workflow's jobs come.
 */
export function inWorkflowOrder(jobs: JobView[]): JobView[] {
  const base = (key: string) => key.replace(/ \(.*\)$/, '')
  const first = new Map<string, number>()
  jobs.forEach((j, i) => {
    if (!first.has(base(j.key))) first.set(base(j.key), i)
  })
  return jobs
    .map((j, i) => ({ j, i }))
    .sort((a, b) => first.get(base(a.j.key))! - first.get(base(b.j.key))! || a.i - b.i)
    .map(({ j }) => j)
}
