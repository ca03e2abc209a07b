import type { SeriesPoint } from '../../../shared/model'
import { clockTime } from '../format'
import { SERIES_SPAN_MS } from '../state/node-logic'

/**
 * CPU busy over the last 15 minutes (or since the history starts, when it is shorter, as the
 * caption then says), as a line on a fixed 0–100 % scale so nodes compare at a glance. Points without a figure (the
 * node did not answer) break the line.
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
  const shown = points.filter((p) => p.at >= now - SERIES_SPAN_MS)
  const first = shown.find((p) => p.cpuPct !== null)
  const measured = shown.filter((p) => p.cpuPct !== null).length
  const from = first && measured > 1 ? first.at : now - SERIES_SPAN_MS
  const span = Math.max(1, now - from)
  const x = (at: number) => Math.min(width, ((at - from) / span) * width)
  const y = (pct: number) => height - 1 - (Math.min(100, Math.max(0, pct)) / 100) * (height - 2)
  const runs: string[][] = [[]]
  for (const p of shown) {
    if (p.cpuPct === null) {
      if (runs[runs.length - 1]!.length) runs.push([])
      continue
    }
    runs[runs.length - 1]!.push(`${x(p.at).toFixed(1)},${y(p.cpuPct).toFixed(1)}`)
  }
  const lines = runs.filter((r) => r.length > 0)
  const last = [...shown].reverse().find((p) => p.cpuPct !== null)
  const caption =
    first && first.at > now - SERIES_SPAN_MS + 60_000
      ? `CPU since ${clockTime(first.at)}`
      : 'CPU, last 15 min'
  const label = last ? `${caption}, now ${Math.round(last.cpuPct!)} %` : `${caption}: no figures yet`
  return (
    <span className="spark-row">
      <svg
        className="sparkline"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={label}
      >
        <title>{label}</title>
        {!lines.length && (
          <text x={width / 2} y={height / 2 + 3} textAnchor="middle">
            no figures yet
          </text>
        )}
        <line className="axis" x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} />
        {lines.map((r, i) =>
          r.length === 1 ? (
            <circle key={i} cx={r[0]!.split(',')[0]} cy={r[0]!.split(',')[1]} r={1.5} />
          ) : (
            <polyline key={i} points={r.join(' ')} />
          ),
        )}
      </svg>
      <span className="muted small">{caption}</span>
    </span>
  )
}
