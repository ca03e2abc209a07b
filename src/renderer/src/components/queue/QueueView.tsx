import { useStore } from 'zustand'
import type { Priority } from '../../../../shared/model'
import type { QueueStore } from '../../state/queue-store'
import { expectedIn, when } from '../../format'
import { countsLine } from '../../../../shared/wait-counts'
import { ActionError, useAction } from '../use-action'

const PRIORITIES: Priority[] = ['hotfix', 'high', 'normal', 'low']

/** Everything that waits, in order of service, with why: runs not started, jobs waiting for a slot. */
export function QueueView({ queue, onOpenRun }: { queue: QueueStore; onOpenRun: (runId: number) => void }) {
  const { runs, jobs, failed } = useStore(queue, (s) => s.queue)
  const loaded = useStore(queue, (s) => s.loaded)
  const act = useAction(async (f: () => Promise<void>) => f())
  const nothing = !runs.length && !jobs.length && !failed.length
  return (
    <section className="queue-view" aria-label="Queue">
      <h2>Queue</h2>
      <ActionError error={act.error} />
      {loaded && nothing && (
        <p className="empty">Nothing waits: every triggered run has started and every job has a slot.</p>
      )}
      {jobs.length > 0 && (
        <>
          <h3>Waiting jobs</h3>
          <table className="queue-table" aria-label="Waiting jobs">
            <thead>
              <tr>
                <th>#</th>
                <th>Job</th>
                <th>Priority</th>
                <th>Waiting since</th>
                <th>Expected start</th>
                <th>Why it waits</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.jobId} data-job-id={j.jobId}>
                  <td>{j.position ?? '—'}</td>
                  <td>
                    <button className="link" onClick={() => onOpenRun(j.runId)}>
                      run #{j.runId} · {j.key}
                    </button>
                  </td>
                  <td>
                    <span className={`prio prio-${j.priority}`}>{j.priority}</span>
                  </td>
                  <td>{when(j.since)}</td>
                  <td title="From the forecasts of what runs and waits before it">
                    {expectedIn(j.expectedStart)}
                  </td>
                  <td className="reason">
                    {j.reason}
                    {countsLine(j.counts) && (
                      <div className="counts" title="The farm's nodes by why none took it">
                        nodes: {countsLine(j.counts)}
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {runs.length > 0 && (
        <>
          <h3>Runs waiting to start</h3>
          <table className="queue-table" aria-label="Runs waiting to start">
            <thead>
              <tr>
                <th>#</th>
                <th>Workflow</th>
                <th>Priority</th>
                <th>Queued</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.queueId} data-queue-id={r.queueId}>
                  <td>{r.position}</td>
                  <td className="path">{r.workflowFile}</td>
                  <td>
                    <select
                      aria-label={`Priority of queue entry ${r.queueId}`}
                      value={r.priority}
                      onChange={(e) =>
                        void act.run(() =>
                          queue.getState().setPriority(r.queueId, e.target.value as Priority),
                        )
                      }
                    >
                      {PRIORITIES.map((p) => (
                        <option key={p}>{p}</option>
                      ))}
                    </select>
                  </td>
                  <td>{when(r.submittedAt)}</td>
                  <td>
                    <button onClick={() => void act.run(() => queue.getState().remove(r.queueId))}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {failed.length > 0 && (
        <>
          <h3>Could not start</h3>
          <ul className="failed-list" aria-label="Could not start">
            {failed.map((f) => (
              <li key={f.queueId}>
                <span className="path">{f.workflowFile}</span>{' '}
                <span className="sub">{when(f.submittedAt)}</span>
                <pre className="reason">{f.error}</pre>
                <button onClick={() => void act.run(() => queue.getState().remove(f.queueId))}>
                  Dismiss
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  )
}

/** "in about 4 min", from a forecast start; a dash when nothing tells. */
