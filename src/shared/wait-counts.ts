/**
 * A waiting job's counts of nodes by why none took it, in one line, most first, as Nomad lists
 * its filtered and exhausted nodes: "lacks label gpu: 3 · busy: 2 · refuses work: 1". Empty
 * when there are none (a concurrency group holds the job, not the nodes).
 */
export function countsLine(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([why, n]) => `${why}: ${n}`)
    .join(' · ')
}
