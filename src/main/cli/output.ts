/** Terminal output of the CLI: job-prefixed log lines, colour only on a TTY. */
import type { JobState, LogStream, StepState } from '../../shared/model'

export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
  color: boolean
}

export function processIo(): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
  }
}

const PALETTE = [36, 35, 33, 32, 34, 31]

export function paint(io: CliIo, code: number, text: string): string {
  return io.color ? `\x1b[${code}m${text}\x1b[0m` : text
}

export class JobPrefixer {
  private readonly colors = new Map<string, number>()
  private width = 0
  constructor(
    private readonly io: CliIo,
    jobKeys: string[],
  ) {
    jobKeys.forEach((k, i) => this.colors.set(k, PALETTE[i % PALETTE.length]!))
    this.width = Math.max(0, ...jobKeys.map((k) => k.length))
  }

  line(jobKey: string, stream: LogStream, text: string): string {
    const prefix = paint(this.io, this.colors.get(jobKey) ?? 0, `[${jobKey}]`.padEnd(this.width + 2))
    const body =
      stream === 'system'
        ? paint(this.io, 2, `· ${text}`)
        : stream === 'stderr'
          ? paint(this.io, 31, text)
          : text
    return `${prefix} ${body}\n`
  }
}

/**
 * What `yardmaster run` says of steps and jobs, in its own process or following a run another
 * process executes (run-follower.ts): a step starting, a step ending other than well, a job ending.
 */
export const stepStartLine = (index: number, name: string): string => `step ${index + 1}: ${name}`

export function stepEndLine(index: number, state: StepState, exitCode: number | null): string | null {
  if (state === 'running' || state === 'pending' || state === 'succeeded') return null
  return `step ${index + 1} ${state}${exitCode === null ? '' : ` (exit code ${exitCode})`}`
}

export function jobEndLine(state: JobState, reason: string | null | undefined): string | null {
  if (state === 'running' || state === 'pending') return null
  return `job ${state}${reason ? `: ${reason}` : ''}`
}

/** When something is expected, from now: `in 40s`, `in 3m`, `in 2h`; `-` when unknown. */
export function inAbout(at: number | null): string {
  if (at === null) return '-'
  const s = Math.round((at - Date.now()) / 1000)
  return s <= 0
    ? 'now'
    : s < 90
      ? `in ${s}s`
      : s < 5400
        ? `in ${Math.round(s / 60)}m`
        : `in ${Math.round(s / 3600)}h`
}

/** Said once a run starts when its jobs have history; null when its finish is unknown. */
export function expectedFinishLine(at: number | null): string | null {
  return at === null ? null : `expected to finish ${inAbout(at)} (from its jobs' past runs)\n`
}
