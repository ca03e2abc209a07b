/**
 * CLI commands that go through an orchestrator: when a console's orchestrator (serve, the app)
 * runs on the same data directory, they submit there and follow the run from the history;
 * otherwise they host one in-process for the length of the run. Ctrl-C cancels the run.
 */
import { NodeSessions } from '../core/executor/node-sessions'
import { Orchestrator } from '../core/orchestrator/orchestrator'
import { SlotClaims } from '../core/orchestrator/slot-claims'
import { ClaimStore } from '../core/store/claim-store'
import { openDatabase, type Db } from '../core/store/database'
import type { QueueEntry } from '../core/store/queue-store'
import type { RunState } from '../../shared/model'
import { EXIT, type ParsedArgs } from './args'
import { RunStore } from '../core/store/run-store'
import { runReport } from './run-report'
import { loadFarm } from './farm-option'
import { paint, type CliIo } from './output'
import { followRun } from './run-follower'

export interface Followed {
  runId: number
  state: RunState
}

/** Submits with `submit`, follows the run to its end; null when it could not start (said on stderr). */
export async function submitAndFollow(
  args: ParsedArgs,
  io: CliIo,
  signal: AbortSignal,
  submit: (o: Orchestrator) => Promise<QueueEntry>,
  onStarted?: (runId: number) => void,
): Promise<Followed | null> {
  const db = openDatabase(args.dataDir)
  let sessions: NodeSessions | null = null
  let hosted: Orchestrator | null = null
  try {
    const live = consoleOn(db)
    // Not started: it records the entry, and the console's orchestrator takes it.
    let o = new Orchestrator({ db, farm: () => NO_FARM, sessions: () => sessions!, kind: 'run' })
    if (live) {
      io.err(paint(io, 2, `submitting to the console's orchestrator (pid ${live.pid} on ${live.host})\n`))
    } else {
      const farm = await loadFarm(args.farm, args.platforms)
      sessions = new NodeSessions(farm, { dataDir: args.dataDir, acceptNewHostKeys: args.acceptNewHostKeys })
      const s = sessions
      hosted = new Orchestrator({ db, farm: () => farm, sessions: () => s, kind: 'run' }).start()
      o = hosted
    }
    const entry = await submit(o)
    const runId = await startedRun(o, entry.id, signal)
    if (runId === null) {
      const why = o.startError(entry.id)
      io.err(why ? `${why}\n` : 'cancelled before the run started\n')
      return null
    }
    onStarted?.(runId)
    // Ctrl-C asks the run's orchestrator to cancel it; the follower shows it end.
    const cancel = () => o.runs.requestRunCancel(runId, 'cancelled from the terminal (Ctrl-C)')
    if (signal.aborted) cancel()
    else signal.addEventListener('abort', cancel, { once: true })
    try {
      const claims = new SlotClaims(new ClaimStore(db))
      const state = await followRun(o.runs, runId, io, { reap: () => claims.reap() })
      return { runId, state }
    } finally {
      signal.removeEventListener('abort', cancel)
    }
  } finally {
    await hosted?.stop()
    await sessions?.closeAll()
    db.close()
  }
}

/**
 * The end of a followed run as `yardmaster run` ends one: its verdict on stderr, the `--json`
 * report, and the exit code (2 when it could not start).
 */
export function reportFollowed(args: ParsedArgs, io: CliIo, done: Followed | null): number {
  if (!done) return EXIT.invalid
  const verdict = done.state === 'succeeded' ? paint(io, 32, 'succeeded') : paint(io, 31, done.state)
  io.err(`run ${done.runId} ${verdict} (history: ${args.dataDir})\n`)
  if (args.json) {
    const db = openDatabase(args.dataDir)
    try {
      io.out(JSON.stringify(runReport(new RunStore(db), done.runId)) + '\n')
    } finally {
      db.close()
    }
  }
  return done.state === 'succeeded' ? EXIT.ok : EXIT.failed
}

const NO_FARM = { file: null, knownHosts: '', nodes: [], platforms: {} }

/** The console orchestrator (serve, the app) running on this history, if one does. */
export function consoleOn(db: Db): { pid: number; host: string } | null {
  const o = new SlotClaims(new ClaimStore(db)).console()
  return o ? { pid: o.pid, host: o.host } : null
}

/** Waits for the entry to become a run; null when it could not start, or the signal aborted first. */
async function startedRun(o: Orchestrator, queueId: number, signal: AbortSignal): Promise<number | null> {
  for (;;) {
    const runId = o.runOf(queueId)
    if (runId !== null) return runId
    if (o.startError(queueId) !== null) return null
    if (signal.aborted) {
      try {
        o.dequeue(queueId)
        return null
      } catch {
        // Taken and being prepared: wait for its run, which the caller then cancels.
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}
