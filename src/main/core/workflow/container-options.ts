/**
 * What a job's `container.options` ask of a node, from the docker run flags GitHub passes
 * through: `--cpus`, `--memory`/`-m`, `--gpus`. The scheduler fits jobs to nodes with these,
 * and the container gets them as limits. Other flags are not used (`-v`, `--privileged` and the
 * like never reach the engine: a workflow gets only what the farm allows).
 */

export interface ResourceNeeds {
  cpus: number | null
  memoryBytes: number | null
  /** Number of GPUs, or 'all'. */
  gpus: number | 'all' | null
}

export const NO_NEEDS: ResourceNeeds = { cpus: null, memoryBytes: null, gpus: null }

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** `512m`, `2g`, `1073741824` -> bytes; null when it is not a size. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt])?b?$/i.exec(text.trim())
  if (!m) return null
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!)
}

export function resourceNeeds(options: string | null | undefined): ResourceNeeds {
  if (!options) return NO_NEEDS
  const words = options.trim().split(/\s+/)
  const needs: ResourceNeeds = { ...NO_NEEDS }
  for (let i = 0; i < words.length; i++) {
    const [flag, inline] = words[i]!.split('=', 2) as [string, string | undefined]
    const value = () => inline ?? words[++i] ?? ''
    if (flag === '--cpus') {
      const v = value()
      const n = Number(v)
      if (!Number.isFinite(n) || n <= 0)
        throw new Error(`container options: --cpus takes a positive number, not "${v}"`)
      needs.cpus = n
    } else if (flag === '--memory' || flag === '-m') {
      const v = value()
      const bytes = parseSize(v)
      if (bytes === null || bytes <= 0)
        throw new Error(`container options: ${flag} takes a size such as 512m or 4g, not "${v}"`)
      needs.memoryBytes = bytes
    } else if (flag === '--gpus') {
      const v = value().replace(/^count=/, '')
      if (v === 'all') needs.gpus = 'all'
      else {
        const n = Number(v)
        if (!Number.isInteger(n) || n <= 0)
          throw new Error(`container options: --gpus takes "all" or a count, not "${v}"`)
        needs.gpus = n
      }
    }
  }
  return needs
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['t', 1024 ** 4],
    ['g', 1024 ** 3],
    ['m', 1024 ** 2],
    ['k', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`
  }
  return `${bytes}b`
}

/**
 * A service container. It shares the job container's network namespace, so the job reaches it
 * on localhost, and by its name (an /etc/hosts entry in the job container).
 */
export interface ServiceSpec {
  name: string
  image: string
  env: Record<string, string>
  volumes: string[]
  credentials: { username: string; password: string } | null
  /** Replaces the image's command / entrypoint, when given. */
  command: string | null
  entrypoint: string | null
}
