/** Small display helpers. */
export function duration(from: number | null, to: number | null, now = Date.now()): string {
  if (from === null) return '—'
  const ms = (to ?? now) - from
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  return `${m} min ${Math.round(s - m * 60)} s`
}

export function when(at: number | null): string {
  if (at === null) return '—'
  const d = new Date(at)
  const today = new Date()
  const time = d.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  })
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`
}

export function clockTime(at: number): string {
  return new Date(at).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  })
}

/** `20.1 GiB`, `512 MiB`, `3 KiB` (binary units, as `df -h` and Docker print them). */
export function bytes(n: number | null): string {
  if (n === null) return '—'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 || v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`
}

/** `0.8 ms`, `12 ms`, `2.1 s`. */
export function millis(n: number | null): string {
  if (n === null) return '—'
  if (Math.abs(n) >= 1000) return `${(n / 1000).toFixed(1)} s`
  return Math.abs(n) < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`
}

/** Clock skew with its sign: `+12 ms` (the node is ahead), `-2.0 s`. */
export function skew(n: number | null): string {
  if (n === null) return '—'
  return `${n > 0 ? '+' : n < 0 ? '−' : '±'}${millis(Math.abs(n))}`
}

export function percent(n: number | null): string {
  return n === null ? '—' : `${Math.round(n)} %`
}

/** When something is expected, from now: `in about 3 min`; `—` when unknown. */
export function expectedIn(at: number | null): string {
  if (at === null) return '—'
  const min = Math.round((at - Date.now()) / 60_000)
  return min < 1 ? 'any moment' : min < 90 ? `in about ${min} min` : `in about ${Math.round(min / 60)} h`
}
