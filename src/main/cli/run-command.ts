/** `yardmaster run <workflow.yml> [--farm farm.yml] [--data-dir DIR]` */
import { RunStore } from '../core/store/run-store'
import { openDatabase } from '../core/store/database'
import { loadWorkflow } from '../core/workflow/parse-workflow'
import { executeRun, prepareRun } from '../core/executor/run-workflow'
import { NodeSessions } from '../core/executor/node-sessions'
import { describeNode } from '../core/farm/farm-model'
import { loadFarm } from './farm-option'
import { JobPrefixer, paint, type CliIo } from './output'
import { EXIT, type ParsedArgs } from './args'

export async function runCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const file = args.positionals[0]
  if (!file) {
    io.err('yardmaster run: which workflow? usage: yardmaster run <workflow.yml> [--farm farm.yml]\n')
    return EXIT.invalid
  }
  // Validate everything before touching the network or the history.
  const workflow = loadWorkflow(file)
  const farm = await loadFarm(args.farm)
  const sessions = new NodeSessions(farm)
  try {
    io.err(paint(io, 2, `connecting to ${farm.nodes.map((n) => n.name).join(', ')}...\n`))
    const prepared = await prepareRun(workflow, farm, sessions)
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
            if (state === 'running') io.err(paint(io, 2, `run ${id} started: ${workflow.name}\n`))
          },
          stepChanged: (_r, job, i, name, state, code) => {
            if (state === 'running') io.out(prefix.line(job, 'system', `step ${i + 1}: ${name}`))
            else if (state !== 'succeeded')
              io.out(
                prefix.line(
                  job,
                  'system',
                  `step ${i + 1} ${state}${code === null ? '' : ` (exit code ${code})`}`,
                ),
              )
          },
          jobChanged: (_r, job, state, d) => {
            if (state !== 'running' && state !== 'pending') {
              io.out(prefix.line(job, 'system', `job ${state}${d.reason ? `: ${d.reason}` : ''}`))
            }
          },
          log: (t, stream, text) => {
            if (stream !== 'system' || t.stepIndex === null) io.out(prefix.line(t.jobKey, stream, text))
          },
        },
      })
      const verdict = result.state === 'succeeded' ? paint(io, 32, 'succeeded') : paint(io, 31, result.state)
      io.err(`run ${result.runId} ${verdict} (history: ${args.dataDir})\n`)
      return result.state === 'succeeded' ? EXIT.ok : EXIT.failed
    } finally {
      db.close()
    }
  } finally {
    await sessions.closeAll()
  }
}
