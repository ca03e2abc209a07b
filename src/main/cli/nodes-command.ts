/**
 * `yardmaster nodes [--farm F] [--json] [--runs-on L1,L2]`: every node probed at once, as a table.
 * `yardmaster nodes --watch`: the health monitor, printing every state change.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeStatusView } from '../../shared/model'
import type { Farm } from '../core/farm/farm-model'
import { HealthMonitor } from '../core/farm/health/health-monitor'
import { canTakeNewJobs, type AdminState } from '../core/farm/health/node-state'
import { DB_FILE, openDatabase } from '../core/store/database'
import { NodeMetricsStore } from '../core/store/node-metrics-store'
import { NodeSessions } from '../core/executor/node-sessions'
import { probeFarm } from '../core/farm/farm-status'
import { PROBED_TOOLS } from '../core/farm/node-probe'
import { whoCanTake, type NodeVerdict } from '../core/scheduler/capability-match'
import { EXIT, type ParsedArgs } from './args'
import { loadFarm } from './farm-option'
import { paint, type CliIo } from './output'
import { formatBytes, formatTable } from './text-table'

export async function nodesCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const farm = await loadFarm(args.farm)
  if (args.watch) return watchNodes(farm, args, io, signal)
  const admin = storedAdminStates(args.dataDir)
  const sessions = new NodeSessions(farm, {
    dataDir: args.dataDir,
    acceptNewHostKeys: args.acceptNewHostKeys,
  })
  let statuses: NodeStatusView[]
  try {
    statuses = await probeFarm(farm, (n) => sessions.open(n), { signal })
  } finally {
    await sessions.closeAll()
  }
  const runsOn = args.runsOn
  const verdicts = runsOn
    ? whoCanTake(
        runsOn,
        statuses.map((s) => ({
          name: s.name,
          labels: s.capabilities.labels,
          unreachable: s.unreachableReason,
        })),
      ).map((v) => withAdmin(v, admin.get(v.node)))
    : null

  if (args.json) {
    const out = statuses.map((s, i) => ({
      ...s,
      admin: admin.get(s.name) ?? { kind: 'active' },
      ...(verdicts ? { canTake: verdicts[i] } : {}),
    }))
    io.out(JSON.stringify(out) + '\n')
  } else {
    io.out(nodesTable(io, statuses))
    io.out(footnotes(statuses, admin))
    if (runsOn && verdicts) io.out(verdictLines(runsOn, verdicts))
  }
  return statuses.every((s) => s.reachable) ? EXIT.ok : EXIT.failed
}

function nodesTable(io: CliIo, statuses: NodeStatusView[]): string {
  const header = [
    'NAME',
    'ADDRESS',
    'EXECUTOR',
    'REACHABLE',
    'OS/ARCH',
    'CORES',
    'MEMORY',
    'DISK FREE',
    'LABELS',
  ]
  const rows = statuses.map((s) => {
    const c = s.capabilities
    const probed = s.reachable
    return [
      s.name,
      s.address,
      s.executor,
      probed ? 'yes' : 'no',
      probed ? `${c.os ?? '?'}/${c.arch ?? '?'}` : '-',
      c.cpus === null ? '-' : String(c.cpus),
      formatBytes(c.memoryBytes),
      formatBytes(c.diskFreeBytes),
      c.labels.join(', '),
    ]
  })
  return formatTable(header, rows, (r, col, text) =>
    col === 3 ? paint(io, statuses[r]!.reachable ? 32 : 31, text) : text,
  )
}

/** Why a node is unreachable, where its declaration and the probe disagree, what the probe missed. */
function footnotes(statuses: NodeStatusView[], admin: Map<string, AdminState>): string {
  const lines: string[] = []
  for (const s of statuses) {
    const a = admin.get(s.name)
    if (a && a.kind !== 'active')
      lines.push(
        `${s.name}: ${adminReason(a)} since ${new Date(a.since).toISOString()} (yardmaster node ${s.name} resume)`,
      )
    if (s.unreachableReason) lines.push(`${s.name}: unreachable: ${s.unreachableReason}`)
    for (const note of s.capabilities.notes) lines.push(`${s.name}: ${note}`)
    for (const problem of s.facts?.problems ?? []) lines.push(`${s.name}: ${problem}`)
    // Shell jobs use the machine's own tools, so say which of the usual ones are there.
    const tools = s.capabilities.tools
    if (tools) {
      const missing = PROBED_TOOLS.filter((t) => !tools.includes(t))
      lines.push(
        `${s.name}: tools: ${tools.join(', ') || 'none'}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`,
      )
    }
  }
  return lines.length ? '\n' + lines.join('\n') + '\n' : ''
}

function verdictLines(runsOn: string[], verdicts: NodeVerdict[]): string {
  const lines = verdicts.map((v) =>
    v.can ? `  ${v.node}: can take it` : `  ${v.node}: cannot: ${v.reasons.join('; ')}`,
  )
  const count = verdicts.filter((v) => v.can).length
  return `\na job with runs-on [${runsOn.join(', ')}]: ${count} of ${verdicts.length} nodes can take it\n${lines.join('\n')}\n`
}

/** Admin states kept in the data dir; none when there is no history yet (nothing is created). */
function storedAdminStates(dataDir: string): Map<string, AdminState> {
  if (!existsSync(join(dataDir, DB_FILE))) return new Map()
  const db = openDatabase(dataDir)
  try {
    return new NodeMetricsStore(db).adminStates()
  } finally {
    db.close()
  }
}

/** A node taken out of service (drain, cordon, quarantine) takes no new job, whatever it has. */
function withAdmin(v: NodeVerdict, a: AdminState | undefined): NodeVerdict {
  const why = adminReason(a)
  if (!why) return v
  return v.can ? { node: v.node, can: false, reasons: [why] } : { ...v, reasons: [...v.reasons, why] }
}

function adminReason(a: AdminState | undefined): string | null {
  if (!a || a.kind === 'active') return null
  return `${a.kind}${a.reason ? `: ${a.reason}` : ''}`
}

/**
 * `nodes --watch`: the health monitor in the foreground. Every state change is printed as it
 * happens; samples and events go to the history. Ctrl-C stops.
 */
async function watchNodes(farm: Farm, args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const db = openDatabase(args.dataDir)
  const sessions = new NodeSessions(farm, {
    dataDir: args.dataDir,
    acceptNewHostKeys: args.acceptNewHostKeys,
    timeoutMs: 4000,
  })
  const monitor = new HealthMonitor(farm, sessions, { recorder: new NodeMetricsStore(db) })
  const time = () => new Date().toTimeString().slice(0, 8)
  monitor.subscribe((e) => {
    const from = e.kind === 'health' ? e.from.health.kind : e.from.admin.kind
    const colour = canTakeNewJobs(e.to) ? 32 : 31
    io.out(`${time()} ${e.node}: ${from} -> ${paint(io, colour, e.description)}\n`)
  })
  io.err(
    `watching ${farm.nodes.length} node${farm.nodes.length === 1 ? '' : 's'} every 5 s (history: ${args.dataDir}); Ctrl-C stops\n`,
  )
  monitor.start()
  try {
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
  } finally {
    await monitor.stop()
    await sessions.closeAll()
    db.close()
  }
  return EXIT.ok
}
