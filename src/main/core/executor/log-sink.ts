/**
 * Turns output chunks into lines, hands each line to the observer at once (the terminal, the
 * UI), and stores them in batches: one transaction per flush rather than one per line.
 */
import { StringDecoder } from 'node:string_decoder'
import type { LogStream } from '../../../shared/model'
import type { NewLogLine, RunStore } from '../store/run-store'
import { WorkflowCommands } from '../workflow/workflow-commands'
import { formatBytes } from '../../../shared/format-bytes'

export interface LogTarget {
  runId: number
  jobId: number
  jobKey: string
  stepIndex: number | null
  /** The job's attempt the line comes from; absent for lines about the job itself. */
  attempt?: number
}

export type LineListener = (target: LogTarget, stream: LogStream, text: string) => void

/** What a job's lines pass through: its workflow commands (output only) and its masks (every line). */
export interface LineFilter {
  /** A line of the job's output: what to show, or null to hide it (a workflow command). */
  process(text: string): string | null
  mask(text: string): string
  /** Where a too-long line may be cut without cutting a masked value in two (WorkflowCommands). */
  safeCut?(text: string, at: number): number
  readonly longestMask?: number
}

/**
 * The longest line kept as one (in characters); a longer one (a job printing without newlines)
 * is stored as consecutive lines of this length, so one line never grows without bound.
 */
export const MAX_LINE = 256 * 1024

export interface LogSinkOptions {
  /** Longest a line waits before it is stored. @default 100 */
  flushMs?: number
  onFlushed?: (runId: number, lastSeq: number) => void
  secrets?: Iterable<string>
  /**
   * Most bytes of output kept per job attempt (the farm's `logCapPerJob`); past it the attempt's
   * output is neither stored nor shown, which its log says once. null: everything is kept.
   */
  capBytes?: number | null
  /** Told when an attempt's output first goes past the cap. */
  onCapped?: (target: LogTarget, capBytes: number) => void
}

export class LogSink {
  private pending: NewLogLine[] = []
  private readonly filters = new Map<number, LineFilter>()
  /** The run's secrets, masked in every line whoever wrote it, inside a job or not. */
  private readonly secrets: WorkflowCommands
  private timer: NodeJS.Timeout | null = null
  /** Per job/step/stream: the text of an unfinished line, and a decoder that keeps a UTF-8 character cut between chunks. */
  private readonly partial = new Map<string, { text: string; decoder: StringDecoder }>()
  /** Per job/attempt/step/stream: lines already stored, to drop when they come again (skipStored). */
  private readonly skip = new Map<string, number>()
  /** Bytes of output kept per job attempt, while a cap is set; -1 once past it. */
  private readonly kept = new Map<string, number>()

  constructor(
    private readonly store: RunStore,
    private readonly onLine: LineListener,
    private readonly opts: LogSinkOptions = {},
  ) {
    this.secrets = new WorkflowCommands(opts.secrets ?? [])
  }

  /** A chunk of output; complete lines go out now, the rest waits for its newline. */
  write(target: LogTarget, stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const key = `${target.jobId}/${target.stepIndex}/${stream}`
    let state = this.partial.get(key)
    if (!state) this.partial.set(key, (state = { text: '', decoder: new StringDecoder('utf8') }))
    const lines = (state.text + state.decoder.write(chunk)).split('\n')
    state.text = lines.pop() ?? ''
    for (const line of lines) this.line(target, stream, line.replace(/\r$/, ''))
    while (state.text.length >= MAX_LINE + this.longestMask(target)) {
      const cut = this.safeCut(target, state.text, MAX_LINE)
      this.line(target, stream, state.text.slice(0, cut))
      state.text = state.text.slice(cut)
    }
  }

  private longestMask(target: LogTarget): number {
    return Math.max(this.secrets.longestMask, this.filters.get(target.jobId)?.longestMask ?? 0)
  }

  private safeCut(target: LogTarget, text: string, at: number): number {
    const filter = this.filters.get(target.jobId)
    return Math.min(this.secrets.safeCut(text, at), filter?.safeCut?.(text, at) ?? at)
  }

  /** Emits what is left without a trailing newline for this step. */
  endStep(target: LogTarget): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const key = `${target.jobId}/${target.stepIndex}/${stream}`
      const state = this.partial.get(key)
      this.partial.delete(key)
      const rest = state ? state.text + state.decoder.end() : ''
      if (rest) this.line(target, stream, rest.replace(/\r$/, ''))
    }
  }

  /**
   * Output of a job passes through its filter (workflow commands, masks) before it is shown or
   * stored; a filter returning null hides the line. Yardmaster's own lines (`system`) are not
   * read as workflow commands, but are masked all the same.
   */
  setFilter(jobId: number, filter: LineFilter | null): void {
    if (filter) this.filters.set(jobId, filter)
    else this.filters.delete(jobId)
  }

  /**
   * The first `lines` lines of a step's stream that come from now on are stored already (by an
   * orchestrator that died, whose job is followed again from the step's start): they go through
   * the filter as before (so masks they add hold again) and count against the cap, but are
   * neither stored nor shown again.
   */
  skipStored(target: LogTarget, stream: 'stdout' | 'stderr', lines: number): void {
    this.skip.set(skipKey(target, stream), lines)
  }

  line(target: LogTarget, stream: LogStream, raw: string): void {
    const filter = this.filters.get(target.jobId)
    const shown = !filter ? raw : stream === 'system' ? filter.mask(raw) : filter.process(raw)
    if (shown === null) return
    const text = this.secrets.mask(shown)
    if (stream !== 'system' && !this.withinCap(target, text)) return
    if (stream !== 'system' && this.skip.size) {
      const key = skipKey(target, stream)
      const left = this.skip.get(key) ?? 0
      if (left > 0) {
        if (left === 1) this.skip.delete(key)
        else this.skip.set(key, left - 1)
        return
      }
    }
    this.onLine(target, stream, text)
    this.pending.push({
      runId: target.runId,
      jobId: target.jobId,
      stepIndex: target.stepIndex,
      attempt: target.attempt ?? null,
      stream,
      text,
      at: Date.now(),
    })
    this.timer ??= setTimeout(() => this.flush(), this.opts.flushMs ?? 100)
  }

  /** Counts the line against its attempt's cap: false once past it (said in the log, once). */
  private withinCap(target: LogTarget, text: string): boolean {
    const cap = this.opts.capBytes
    if (cap == null) return true
    const key = `${target.jobId}/${target.attempt ?? 0}`
    const before = this.kept.get(key) ?? 0
    if (before < 0) return false
    const after = before + Buffer.byteLength(text) + 1
    if (after <= cap) {
      this.kept.set(key, after)
      return true
    }
    this.kept.set(key, -1)
    this.line(
      target,
      'system',
      `this job's log reached its cap of ${formatBytes(cap)} (logCapPerJob in the farm file): ` +
        'later output is not stored or shown; the job goes on',
    )
    this.opts.onCapped?.(target, cap)
    return false
  }

  /** A text with the run's secrets masked: for what is recorded or shown besides lines (reasons, notices). */
  mask(text: string): string {
    return this.secrets.mask(text)
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (!this.pending.length) return
    const batch = this.pending
    this.pending = []
    const lastSeq = this.store.appendLogs(batch)
    this.opts.onFlushed?.(batch[batch.length - 1]!.runId, lastSeq)
  }
}

const skipKey = (t: LogTarget, stream: 'stdout' | 'stderr') =>
  `${t.jobId}/${t.attempt ?? 0}/${t.stepIndex}/${stream}`
