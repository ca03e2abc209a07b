import { useStore } from 'zustand'
import type { JobView } from '../../../shared/model'
import type { AppStore } from '../state/app-store'
import { duration, when } from '../format'
import { LogView } from './LogView'
import { StateBadge } from './StateBadge'

export function RunView({ store }: { store: AppStore }) {
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
          <StateBadge state={run.state} />
          <span>started {when(run.startedAt)}</span>
          <span>took {duration(run.startedAt, run.finishedAt)}</span>
          <span className="path" title={run.workflowFile}>
            {run.workflowFile}
          </span>
        </div>
      </header>
      <div className="jobs" role="list" aria-label="Jobs">
        {inWorkflowOrder(jobs).map((job) => (
          <JobCard
            key={job.id}
            job={job}
            active={logJob === job.key}
            onSelect={() => showJob(logJob === job.key ? null : job.key)}
          />
        ))}
      </div>
      <LogView store={store} />
    </section>
  )
}

function JobCard({ job, active, onSelect }: { job: JobView; active: boolean; onSelect: () => void }) {
  return (
    <button
      role="listitem"
      className={active ? 'job active' : 'job'}
      onClick={onSelect}
      data-job={job.key}
      title="Show only this job's log"
    >
      <div className="job-head">
        <strong>{job.name}</strong>
        <StateBadge state={job.state} />
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
    </button>
  )
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
