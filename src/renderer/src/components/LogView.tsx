import { useEffect, useRef } from 'react'
import { useStore } from 'zustand'
import type { AppStore } from '../state/app-store'
import { clockTime } from '../format'

/** The run's log, newest at the bottom; follows new lines while scrolled to the end. */
export function LogView({ store }: { store: AppStore }) {
  const logs = useStore(store, (s) => s.logs)
  const logJob = useStore(store, (s) => s.logJob)
  const detail = useStore(store, (s) => s.detail)
  const stepName = (job: string, index: number) =>
    detail?.jobs.find((j) => j.key === job)?.steps[index]?.name ?? `step ${index + 1}`
  const ref = useRef<HTMLDivElement>(null)
  const follow = useRef(true)
  const shown = logJob ? logs.filter((l) => l.jobKey === logJob) : logs

  useEffect(() => {
    const el = ref.current
    if (el && follow.current) el.scrollTop = el.scrollHeight
  }, [shown.length])

  return (
    <div className="log-panel">
      <div className="log-title">
        Log {logJob ? `of job ${logJob}` : 'of all jobs'} · {shown.length} line{shown.length === 1 ? '' : 's'}
      </div>
      <div
        className="log"
        ref={ref}
        role="log"
        aria-label="Log"
        onScroll={(e) => {
          const el = e.currentTarget
          follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 4
        }}
      >
        {shown.map((l, i) => {
          const prev = shown[i - 1]
          // A header where a job's next step begins, so the log reads like the job's outline.
          const newStep =
            l.stepIndex !== null && (prev?.jobKey !== l.jobKey || prev?.stepIndex !== l.stepIndex)
          return (
            <div key={l.seq}>
              {newStep && (
                <div className="line step-head">
                  <span className="t" />
                  <span className="j">{l.jobKey}</span>
                  <span className="x">
                    ▸ step {l.stepIndex! + 1}: {stepName(l.jobKey, l.stepIndex!)}
                  </span>
                </div>
              )}
              <div className={`line ${l.stream}`}>
                <span className="t">{clockTime(l.at)}</span>
                <span className="j">{l.jobKey}</span>
                <span className="x">{l.text}</span>
              </div>
            </div>
          )
        })}
      </div>
    </div>
  )
}
