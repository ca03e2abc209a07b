import type { SeriesPoint } from '../../../shared/model'
import { SERIES_SPAN_MS } from '../state/node-logic'

/**
 * CPU busy over the last 15 minutes, as a line on a fixed 0–100 % scale (so nodes compare at a
 * glance). Points without a figure (the node did not answer) break the line.
 */
export function CpuSparkline({
  points,
  now,
  width = 160,
  height = 28,
}: {
  points: SeriesPoint[]
  now: number
  width?: number
  height?: number
}) {
  const from = now - SERIES_SPAN_MS
  const x = (at: number) => ((at - from) / SERIES_SPAN_MS) * width
  const y = (pct: number) => height - 1 - (Math.min(100, Math.max(0, pct)) / 100) * (height - 2)
  const runs: string[][] = [[]]
  for (const p of points) {
    if (p.at < from) continue
    if (p.cpuPct === null) {
      if (runs[runs.length - 1]!.length) runs.push([])
      continue
    }
    runs[runs.length - 1]!.push(`${x(p.at).toFixed(1)},${y(p.cpuPct).toFixed(1)}`)
  }
  const lines = runs.filter((r) => r.length > 0)
  const last = [...points].reverse().find((p) => p.cpuPct !== null)
  const label = last
    ? `CPU over the last 15 minutes, now ${Math.round(last.cpuPct!)} %`
    : 'CPU over the last 15 minutes: no figures yet'
  return (
    <svg
      className="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
    >
      <title>{label}</title>
      <line className="axis" x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} />
      {lines.map((r, i) =>
        r.length === 1 ? (
          <circle key={i} cx={r[0]!.split(',')[0]} cy={r[0]!.split(',')[1]} r={1.5} />
        ) : (
          <polyline key={i} points={r.join(' ')} />
        ),
      )}
    </svg>
  )
}
