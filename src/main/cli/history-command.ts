/** `yardmaster history [--limit N] [--json]` */
import { openDatabase } from '../core/store/database'
import { RunStore } from '../core/store/run-store'
import type { RunSummary } from '../../shared/model'
import { EXIT, type ParsedArgs } from './args'
import { inAbout, paint, type CliIo } from './output'

export function historyCommand(args: ParsedArgs, io: CliIo): number {
  const db = openDatabase(args.dataDir)
  try {
    const runs = new RunStore(db).listRuns(args.limit)
    if (args.json) {
      io.out(JSON.stringify(runs) + '\n')
      return EXIT.ok
    }
    if (!runs.length) {
      io.out(`no runs yet in ${args.dataDir}; start one with: yardmaster run <workflow.yml>\n`)
      return EXIT.ok
    }
    io.out(['RUN', 'STATE', 'STARTED', 'DURATION', 'JOBS', 'WORKFLOW'].join('\t') + '\n')
    for (const r of runs) io.out(row(io, r) + '\n')
    return EXIT.ok
  } finally {
    db.close()
  }
}

function row(io: CliIo, r: RunSummary): string {
  const color = r.state === 'succeeded' ? 32 : r.state === 'failed' ? 31 : 33
  const started = new Date(r.startedAt ?? r.createdAt).toISOString().replace('T', ' ').slice(0, 19)
  const duration =
    r.finishedAt && r.startedAt
      ? `${((r.finishedAt - r.startedAt) / 1000).toFixed(1)}s`
      : r.expectedFinish !== null
        ? `ends ${inAbout(r.expectedFinish)}`
        : '-'
  return [
    r.id,
    paint(io, color, r.state),
    started,
    duration,
    r.jobCount,
    `${r.workflowName} (${r.workflowFile})`,
  ].join('\t')
}
