import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { LogStream } from '../../../shared/model'
import { openDatabase, type Db } from '../store/database'
import { RunStore } from '../store/run-store'
import { WorkflowCommands } from '../workflow/workflow-commands'
import { LogSink, MAX_LINE, type LogSinkOptions, type LogTarget } from './log-sink'

let dir: string
let db: Db
let store: RunStore
let runId: number
let jobId: number
let seen: Array<[number | null, LogStream, string]>
let flushed: Array<[number, number]>

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-logs-'))
  db = openDatabase(dir)
  store = new RunStore(db)
  const created = store.createRun({
    workflowName: 'w',
    workflowFile: '/w.yml',
    farmFile: null,
    jobs: [{ key: 'build', name: 'build', needs: [], runsOn: ['x'], steps: ['a', 'b'] }],
  })
  runId = created.runId
  jobId = created.jobIds.get('build')!
  seen = []
  flushed = []
})
afterEach(() => {
  vi.useRealTimers()
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const step = (stepIndex: number | null): LogTarget => ({ runId, jobId, jobKey: 'build', stepIndex })
const b = (s: string) => Buffer.from(s, 'utf8')

function sink(flushMs = 10_000, opts: LogSinkOptions = {}): LogSink {
  return new LogSink(store, (t, stream, text) => seen.push([t.stepIndex, stream, text]), {
    flushMs,
    onFlushed: (id, seq) => flushed.push([id, seq]),
    ...opts,
  })
}

describe('LogSink', () => {
  it('stores a step followed again from its start once: the lines already stored are skipped, masks they add hold', () => {
    const target = { ...step(0), attempt: 1 }
    const output = ['one', '::add-mask::hunter2', 'two', 'err: hunter2', 'three hunter2', 'four']
    const feed = (s: LogSink, lines: string[]) => {
      s.setFilter(jobId, new WorkflowCommands())
      for (const l of lines) s.write(target, 'stdout', b(`${l}\n`))
      s.write(target, 'stderr', b('e1\n'))
    }
    // The orchestrator that dies stored the first lines of each stream.
    const first = sink()
    feed(first, output.slice(0, 3))
    first.flush()
    const at = { runId, jobId, attempt: 1, stepIndex: 0 }
    expect([store.storedLines(at, 'stdout'), store.storedLines(at, 'stderr')]).toEqual([2, 1])
    // The next one follows the step's record from its start.
    const next = sink()
    next.skipStored(target, 'stdout', store.storedLines(at, 'stdout'))
    next.skipStored(target, 'stderr', store.storedLines(at, 'stderr'))
    seen = []
    feed(next, output)
    next.endStep(target)
    next.flush()
    expect(seen.map(([, , t]) => t)).toEqual(['err: ***', 'three ***', 'four'])
    expect(store.getLogs(runId).map((l) => `${l.stream}:${l.text}`)).toEqual([
      'stdout:one',
      'stdout:two',
      'stderr:e1',
      'stdout:err: ***',
      'stdout:three ***',
      'stdout:four',
    ])
  })

  it('splits chunks into lines, joining lines cut across chunks', () => {
    const s = sink()
    s.write(step(0), 'stdout', b('hel'))
    expect(seen).toEqual([])
    s.write(step(0), 'stdout', b('lo\nwor'))
    s.write(step(0), 'stdout', b('ld\n\nlast'))
    expect(seen.map(([, , t]) => t)).toEqual(['hello', 'world', ''])
    s.endStep(step(0))
    expect(seen.map(([, , t]) => t)).toEqual(['hello', 'world', '', 'last'])
  })

  it('strips the \\r of CRLF line ends', () => {
    const s = sink()
    s.write(step(0), 'stdout', b('a\r\nb\r'))
    s.write(step(0), 'stdout', b('\nc\r'))
    s.endStep(step(0))
    expect(seen.map(([, , t]) => t)).toEqual(['a', 'b', 'c'])
  })

  it('keeps streams and steps apart while lines are incomplete', () => {
    const s = sink()
    s.write(step(0), 'stdout', b('out-'))
    s.write(step(0), 'stderr', b('err-'))
    s.write(step(1), 'stdout', b('other-'))
    s.write(step(0), 'stderr', b('1\n'))
    s.write(step(0), 'stdout', b('1\n'))
    s.write(step(1), 'stdout', b('1\n'))
    expect(seen).toEqual([
      [0, 'stderr', 'err-1'],
      [0, 'stdout', 'out-1'],
      [1, 'stdout', 'other-1'],
    ])
  })

  it('endStep emits what is left of both streams of that step only', () => {
    const s = sink()
    s.write(step(0), 'stdout', b('no newline'))
    s.write(step(0), 'stderr', b('warning'))
    s.write(step(1), 'stdout', b('later'))
    s.endStep(step(0))
    expect(seen).toEqual([
      [0, 'stdout', 'no newline'],
      [0, 'stderr', 'warning'],
    ])
    s.endStep(step(0)) // nothing left: nothing more
    expect(seen).toHaveLength(2)
    s.endStep(step(1))
    expect(seen[2]).toEqual([1, 'stdout', 'later'])
  })

  it('does not invent an empty line when the output ended with a newline', () => {
    const s = sink()
    s.write(step(0), 'stdout', b('done\n'))
    s.endStep(step(0))
    expect(seen.map(([, , t]) => t)).toEqual(['done'])
  })

  it('flush writes all pending lines in one batch and reports the last seq', () => {
    const s = sink()
    const append = vi.spyOn(store, 'appendLogs')
    s.write(step(0), 'stdout', b('1\n2\n'))
    s.line(step(null), 'system', 'job started')
    expect(store.getLogs(runId)).toEqual([]) // nothing stored before the flush
    s.flush()
    expect(append).toHaveBeenCalledTimes(1)
    const stored = store.getLogs(runId)
    expect(stored.map((l) => [l.stepIndex, l.stream, l.text])).toEqual([
      [0, 'stdout', '1'],
      [0, 'stdout', '2'],
      [null, 'system', 'job started'],
    ])
    expect(flushed).toEqual([[runId, stored[2]!.seq]])
    s.flush() // nothing pending: no write, no report
    expect(append).toHaveBeenCalledTimes(1)
    expect(flushed).toHaveLength(1)
  })

  it('flushes by itself flushMs after the first pending line', () => {
    vi.useFakeTimers()
    const s = sink(100)
    s.write(step(0), 'stdout', b('a\n'))
    vi.advanceTimersByTime(50)
    s.write(step(0), 'stdout', b('b\n'))
    expect(store.getLogs(runId)).toEqual([])
    vi.advanceTimersByTime(50) // 100 ms after the first line, not after the last
    expect(store.getLogs(runId).map((l) => l.text)).toEqual(['a', 'b'])
    expect(flushed).toHaveLength(1)
    s.write(step(0), 'stdout', b('c\n'))
    vi.advanceTimersByTime(100)
    expect(store.getLogs(runId).map((l) => l.text)).toEqual(['a', 'b', 'c'])
    expect(flushed).toHaveLength(2)
  })

  it('flushes on a real timer too', async () => {
    const s = sink(5)
    s.line(step(null), 'system', 'hello')
    await vi.waitFor(() => expect(store.getLogs(runId)).toHaveLength(1), { timeout: 1000, interval: 5 })
  })

  it('stamps each line with the time it was seen', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 })
    const s = sink()
    s.line(step(null), 'system', 'x')
    s.flush()
    expect(store.getLogs(runId)[0]!.at).toBe(1_700_000_000_000)
  })

  // BUG: write() decodes every chunk on its own (chunk.toString('utf8')), so a multi-byte
  // character cut between two chunks (pipes cut anywhere) becomes two U+FFFD replacement
  // characters. Keep a StringDecoder per stream key instead of a string.
  it('keeps a UTF-8 character cut across two chunks intact', () => {
    const s = sink()
    const bytes = b('café ✓\n')
    const cut = bytes.indexOf(0xa9) // inside "é" (c3 a9)
    s.write(step(0), 'stdout', bytes.subarray(0, cut))
    s.write(step(0), 'stdout', bytes.subarray(cut))
    expect(seen.map(([, , t]) => t)).toEqual(['café ✓'])
  })
})

describe('LogSink: output without end', () => {
  it('stores a line longer than MAX_LINE as consecutive lines, losing nothing', () => {
    const s = sink()
    const text = 'x'.repeat(MAX_LINE * 2 + 10)
    // In chunks of 64 KiB, as a channel delivers them.
    for (let i = 0; i < text.length; i += 65_536) s.write(step(0), 'stdout', b(text.slice(i, i + 65_536)))
    s.endStep(step(0))
    expect(seen.map(([, , t]) => t.length)).toEqual([MAX_LINE, MAX_LINE, 10])
    expect(seen.map(([, , t]) => t).join('')).toBe(text)
  })

  it('never cuts a secret in two where it cuts a long line (each half would escape the mask)', () => {
    const secret = 's3cr3t-value-0123456789'
    const s = sink(10_000, { secrets: [secret] })
    // The secret straddles the place a plain cut would fall.
    const text = 'y'.repeat(MAX_LINE - 5) + secret + 'z'.repeat(MAX_LINE)
    s.write(step(0), 'stdout', b(text))
    s.endStep(step(0))
    const lines = seen.map(([, , t]) => t)
    expect(lines.join('')).not.toContain(secret.slice(0, 5))
    expect(lines.join('')).toBe('y'.repeat(MAX_LINE - 5) + '***' + 'z'.repeat(MAX_LINE))
    // The same for a value a step masked (the job's filter).
    seen = []
    const s2 = sink()
    const commands = new WorkflowCommands()
    commands.addMask('added-mask-value')
    s2.setFilter(jobId, commands)
    s2.write(step(1), 'stdout', b('q'.repeat(MAX_LINE - 3) + 'added-mask-value' + 'r'.repeat(MAX_LINE)))
    s2.endStep(step(1))
    expect(seen.map(([, , t]) => t).join('')).toBe('q'.repeat(MAX_LINE - 3) + '***' + 'r'.repeat(MAX_LINE))
  })
})

describe('LogSink: the per-job cap', () => {
  it('keeps output up to the cap, says once that it was reached, and drops the rest of that attempt only', () => {
    const capped: Array<[number | undefined, number]> = []
    const s = sink(10_000, { capBytes: 100, onCapped: (t, cap) => capped.push([t.attempt, cap]) })
    const first = { ...step(0), attempt: 1 }
    for (let i = 0; i < 20; i++) s.write(first, 'stdout', b(`line ${String(i).padStart(4, '0')}\n`))
    s.line(first, 'system', 'the job finished')
    const kept = seen.filter(([, st]) => st === 'stdout').map(([, , t]) => t)
    // Each line is 9 bytes and its newline: ten of them fit in 100 bytes.
    expect(kept).toEqual(Array.from({ length: 10 }, (_, i) => `line ${String(i).padStart(4, '0')}`))
    const system = seen.filter(([, st]) => st === 'system').map(([, , t]) => t)
    expect(system).toEqual([
      "this job's log reached its cap of 100 B (logCapPerJob in the farm file): later output is not stored or shown; the job goes on",
      'the job finished',
    ])
    expect(capped).toEqual([[1, 100]])
    // A retry (the next attempt) has a cap of its own.
    s.write({ ...step(0), attempt: 2 }, 'stdout', b('retried\n'))
    expect(seen.at(-1)).toEqual([0, 'stdout', 'retried'])
    s.flush()
    expect(store.getLogs(runId, 0, 100).filter((l) => l.stream === 'stdout')).toHaveLength(11)
  })
})
