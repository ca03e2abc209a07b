/** `yardmaster nodes [--farm F] [--json] [--runs-on L1,L2]`: every node probed at once, as a table. */
import type { NodeStatusView } from '../../shared/model'
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
      )
    : null

  if (args.json) {
    const out = verdicts ? statuses.map((s, i) => ({ ...s, canTake: verdicts[i] })) : statuses
    io.out(JSON.stringify(out) + '\n')
  } else {
    io.out(nodesTable(io, statuses))
    io.out(footnotes(statuses))
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
function footnotes(statuses: NodeStatusView[]): string {
  const lines: string[] = []
  for (const s of statuses) {
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
