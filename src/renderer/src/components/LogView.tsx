import { useEffect, useRef } from 'react'
import { useStore } from 'zustand'
import type { AppStore } from '../state/app-store'
import { clockTime } from '../format'

/** The run's log, newest at the bottom; follows new lines while scrolled to the end. */
export function LogView({ store }: { store: AppStore }) {
  const logs = useStore(store, (s) => s.logs)
  const logJob = useStore(store, (s) => s.logJob)
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
        Log {logJob ? `of job ${logJob}` : 'of all jobs'} · {shown.length} lines
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
        {shown.map((l) => (
          <div key={l.seq} className={`line ${l.stream}`}>
            <span className="t">{clockTime(l.at)}</span>
            <span className="j">{l.jobKey}</span>
            <span className="x">{l.text}</span>
          </div>
        ))}
      </div>
    </div>
  )
}
