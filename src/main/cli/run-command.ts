/** `yardmaster run <workflow.yml> [--farm farm.yml] [--input K=V]... [--secret K=V]... [--var K=V]... [--json]` */
import { readFile } from 'node:fs/promises'
import { RunStore } from '../core/store/run-store'
import { openDatabase } from '../core/store/database'
import { NodeMetricsStore } from '../core/store/node-metrics-store'
import { outOfService } from '../core/farm/node-admin'
import { loadWorkflow, selectJob } from '../core/workflow/parse-workflow'
import { executeRun } from '../core/executor/run-workflow'
import { prepareRun } from '../core/executor/prepare-run'
import { NodeSessions } from '../core/executor/node-sessions'
import { describeNode } from '../core/farm/farm-model'
import { loadFarm } from './farm-option'
import {
  expectedFinishLine,
  JobPrefixer,
  jobEndLine,
  paint,
  stepEndLine,
  stepStartLine,
  type CliIo,
} from './output'
import { EXIT, UsageError, type ParsedArgs } from './args'
import type { Json } from '../core/workflow/expressions'
import { consoleOn, reportFollowed, submitAndFollow } from './orchestrated'
import { runReport } from './run-report'
import { secretsForRun } from '../core/secrets/run-secrets'
import { envKeySource, SecretStore } from '../core/secrets/secret-store'

export async function runCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const file = args.positionals[0]
  if (!file) {
    io.err('yardmaster run: which workflow? usage: yardmaster run <workflow.yml> [--farm farm.yml]\n')
    return EXIT.invalid
  }
  // Validate everything before touching the network or the history.
  const workflow = selectJob(await loadWorkflow(file), args.job)
  const farm = await loadFarm(args.farm, args.platforms)
  const eventPayload = args.eventPath ? await readEventPayload(args.eventPath) : undefined
  const viaConsole = await maybeViaConsole(args, io, signal, file)
  if (viaConsole !== null) return viaConsole
  const sessions = new NodeSessions(farm, {
    dataDir: args.dataDir,
    acceptNewHostKeys: args.acceptNewHostKeys,
  })
  try {
    io.err(
      paint(io, 2, `checking the farm (${farm.nodes.length} node${farm.nodes.length === 1 ? '' : 's'})...\n`),
    )
    const prepared = await prepareRun(workflow, farm, sessions, {
      unavailable: adminUnavailable(args.dataDir),
      inputs: args.inputs,
      // Stored secrets the workflow names, with --secret and --secret-env taking precedence.
      secrets: secretsForRun(new SecretStore(args.dataDir, envKeySource()), file, args.secrets),
      vars: args.vars,
      event: args.event,
      eventPayload,
      priority: args.priority,
    })
    for (const u of prepared.unreachable)
      io.err(`warning: ${describeNode(u.node)} is unreachable, jobs avoid it: ${u.reason}\n`)
    const db = openDatabase(args.dataDir)
    try {
      const store = new RunStore(db)
      const prefix = new JobPrefixer(
        io,
        workflow.jobs.map((j) => j.key),
      )
      const result = await executeRun(prepared, {
        store,
        signal,
        observer: {
          runChanged: (id, state) => {
            if (state !== 'running') return
            io.err(paint(io, 2, `run ${id} started: ${workflow.name}\n`))
            const finish = expectedFinishLine(store.getRun(id).run.expectedFinish)
            if (finish) io.err(paint(io, 2, finish))
          },
          stepChanged: (_r, job, i, name, state, code) => {
            const line = state === 'running' ? stepStartLine(i, name) : stepEndLine(i, state, code)
            if (line) io.out(prefix.line(job, 'system', line))
          },
          jobChanged: (_r, job, state, d) => {
            const line = jobEndLine(state, d.reason)
            if (line) io.out(prefix.line(job, 'system', line))
          },
          notice: (_id, text) => io.err(paint(io, 33, `${text}\n`)),
          log: (t, stream, text) => {
            io.out(prefix.line(t.jobKey, stream, text))
          },
        },
      })
      const verdict = result.state === 'succeeded' ? paint(io, 32, 'succeeded') : paint(io, 31, result.state)
      io.err(`run ${result.runId} ${verdict} (history: ${args.dataDir})\n`)
      if (args.json) io.out(JSON.stringify(runReport(store, result.runId)) + '\n')
      return result.state === 'succeeded' ? EXIT.ok : EXIT.failed
    } finally {
      db.close()
    }
  } finally {
    await sessions.closeAll()
  }
}

/**
 * When a console's orchestrator runs on this data dir, the run is submitted there (so slots,
 * priorities and the queue are its) and followed from the history; null when there is none, or
 * the run carries what a queue never holds (secrets given on the command line, vars, an event
 * payload), so it runs here. Stored secrets are the console's to give.
 */
async function maybeViaConsole(
  args: ParsedArgs,
  io: CliIo,
  signal: AbortSignal,
  file: string,
): Promise<number | null> {
  const db = openDatabase(args.dataDir)
  let live: ReturnType<typeof consoleOn>
  try {
    live = consoleOn(db)
  } finally {
    db.close()
  }
  if (!live) return null
  if (args.farm)
    io.err(paint(io, 2, `the console's farm decides where the jobs run; --farm ${args.farm} is not used\n`))
  const kept = [
    Object.keys(args.secrets).length ? 'secrets' : null,
    Object.keys(args.vars).length ? 'vars' : null,
    args.eventPath ? 'an event payload' : null,
    Object.keys(args.platforms).length ? 'platforms' : null,
  ].filter(Boolean)
  if (kept.length) {
    io.err(
      paint(
        io,
        33,
        `a console's orchestrator runs on this data dir (pid ${live.pid}), but this run has ${kept.join(', ')}, which are never queued: it runs in this process\n`,
      ),
    )
    return null
  }
  const done = await submitAndFollow(
    args,
    io,
    signal,
    (o) =>
      o.trigger({
        workflowFile: file,
        inputs: args.inputs,
        event: args.event,
        priority: args.priority,
        job: args.job,
      }),
    (id) => io.err(paint(io, 2, `run ${id} started\n`)),
  )
  return reportFollowed(args, io, done)
}

async function readEventPayload(file: string): Promise<Record<string, Json>> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as Json
    if (value && typeof value === 'object' && !Array.isArray(value)) return value
    throw new Error('the event payload must be a JSON object')
  } catch (e) {
    throw new UsageError(`--event-path ${file}: ${(e as Error).message}`)
  }
}

/** Nodes drained, cordoned or quarantined (`yardmaster node <name> drain|cordon`), with why. */
function adminUnavailable(dataDir: string): Map<string, string> {
  const db = openDatabase(dataDir)
  try {
    return outOfService(new NodeMetricsStore(db))
  } finally {
    db.close()
  }
}
