/** 1536 -> "1.5 KiB"; null -> "-". Binary units, as `free` and `docker` use. */
export function formatBytes(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}
