/** `yardmaster node <name> test|trust|containers|images|prune|copy-image <image> --from <node|local>` */
import { createInterface } from 'node:readline/promises'
import type { ContainerView, ImageView, PruneReport } from '../../shared/model'
import { NodeSessions } from '../core/executor/node-sessions'
import { testConnection } from '../core/farm/connection-test'
import { describeNode, isLocal, type Farm, type FarmNode } from '../core/farm/farm-model'
import {
  copyImageFrom,
  CopySourceError,
  findFarmNode,
  LOCAL_ENGINE,
  scanNodeHostKey,
  UnknownNodeError,
} from '../core/farm/farm-service'
import { HostTrust, hostKeyView, trustHostKey } from '../core/transport/host-trust'
import { applyAdminCommand, type AdminCommand } from '../core/farm/node-admin'
import { openDatabase } from '../core/store/database'
import { NodeMetricsStore } from '../core/store/node-metrics-store'
import { listContainers, listImages, NoEngineError, pruneNode } from '../core/farm/node-operations'
import { suggest } from '../core/source/yaml-source'
import { EXIT, type ParsedArgs } from './args'
import { loadFarm } from './farm-option'
import { paint, type CliIo } from './output'
import { formatBytes, formatTable } from './text-table'

const OPERATIONS = [
  'test',
  'trust',
  'drain',
  'cordon',
  'resume',
  'containers',
  'images',
  'prune',
  'copy-image',
] as const
/** Admin states: no connection needed, kept in the data dir. */
const ADMIN_OPERATIONS = ['drain', 'cordon', 'resume'] as const
type AdminOperation = (typeof ADMIN_OPERATIONS)[number]
type Operation = (typeof OPERATIONS)[number]

export const NODE_USAGE = `  yardmaster node <name> test [--json]              time a fresh connection: handshake, engine, round trip
  yardmaster node <name> trust [--yes] [--json]     show the node's host key fingerprint and, once confirmed,
                                                    record it in the data dir's known_hosts (trust on first use)
  yardmaster node <name> drain|cordon [--reason TEXT] take no new jobs (drain: finish the running ones, then
                                                    be cordoned); kept in the data dir until resume
  yardmaster node <name> resume                     take jobs again (also ends a quarantine)
  yardmaster node <name> containers|images [--json] list them; containers made by Yardmaster are marked
  yardmaster node <name> prune [--json]             remove what Yardmaster left there (stopped containers
                                                    and volumes it labelled, dangling images), nothing else
  yardmaster node <name> copy-image <image> --from <node|local>
                                                    copy an image without a registry (save | load over SSH)
`

/** How NoEngineError says what was asked ("…has no Docker engine to <this>"). */
const ENGINE_WORK: Record<Exclude<Operation, 'test' | 'trust' | AdminOperation>, string> = {
  containers: 'list containers of',
  images: 'list images of',
  prune: 'prune',
  'copy-image': 'copy images to',
}

/**
 * A mistake in what was asked (unknown node or operation, missing argument): exit 2 with the
 * message and, when it helps, this command's usage; never the whole help.
 */
class NodeUsageError extends Error {
  constructor(
    message: string,
    readonly showUsage = false,
  ) {
    super(message)
    this.name = 'NodeUsageError'
  }
}

export async function nodeCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  try {
    return await runNodeCommand(args, io, signal)
  } catch (e) {
    if (!isUsageError(e)) throw e
    io.err(
      `yardmaster node: ${e.message}\n${e instanceof NodeUsageError && e.showUsage ? `\nUsage:\n${NODE_USAGE}` : ''}`,
    )
    return EXIT.invalid
  }
}

async function runNodeCommand(args: ParsedArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const [name, op, ...rest] = args.positionals
  if (!name) throw new NodeUsageError('which node?', true)
  const farm = await loadFarm(args.farm)
  const node = findFarmNode(farm, name)
  if (!op) throw new NodeUsageError(`what should be done on ${name}?`, true)
  if (!(OPERATIONS as readonly string[]).includes(op)) {
    const guess = suggest(op, OPERATIONS)
    throw new NodeUsageError(
      `unknown node operation "${op}"${guess ? `; did you mean "${guess}"?` : '.'} ` +
        `Operations: ${OPERATIONS.join(', ')}`,
      true,
    )
  }
  const operation = op as Operation
  if (operation !== 'copy-image' && rest.length)
    throw new NodeUsageError(`${operation} takes no arguments, but was given: ${rest.join(' ')}`)
  if (operation !== 'copy-image' && args.from !== undefined)
    throw new NodeUsageError(`--from is for copy-image, not ${operation}`)
  if (args.reason !== undefined && operation !== 'drain' && operation !== 'cordon')
    throw new NodeUsageError(`--reason is for drain and cordon, not ${operation}`)
  if (isAdmin(operation)) return adminOperation(node, operation, args, io)
  if (operation !== 'test' && operation !== 'trust' && node.executor === 'shell')
    throw new NoEngineError(node, ENGINE_WORK[operation])
  if (operation === 'trust' && isLocal(node))
    throw new NodeUsageError(
      `${node.name} is this machine (host: local): it is reached without SSH and has no host key`,
    )

  try {
    switch (operation) {
      case 'test':
        return await testOperation(farm, node, args, io)
      case 'trust':
        return await trustOperation(farm, node, args, io)
      case 'copy-image':
        return await copyOperation(farm, node, rest, args, io, signal)
      default:
        return await engineOperation(farm, node, operation, args, io)
    }
  } catch (e) {
    if (isUsageError(e)) throw e
    io.err(`yardmaster node ${node.name} ${operation}: ${(e as Error).message}\n`)
    return EXIT.failed
  }
}

/** Mistakes in what was asked (exit 2), as opposed to operations that failed (exit 1). */
function isUsageError(e: unknown): e is Error {
  return (
    e instanceof NodeUsageError ||
    e instanceof NoEngineError ||
    e instanceof UnknownNodeError ||
    e instanceof CopySourceError
  )
}

function isAdmin(op: Operation): op is AdminOperation {
  return (ADMIN_OPERATIONS as readonly string[]).includes(op)
}

/** drain, cordon, resume: the history's admin state, moved by the node state machine. */
function adminOperation(node: FarmNode, op: AdminOperation, args: ParsedArgs, io: CliIo): number {
  const db = openDatabase(args.dataDir)
  try {
    const at = Date.now()
    const command: AdminCommand =
      op === 'resume' ? { type: 'resume', at } : { type: op, at, reason: args.reason ?? null }
    const r = applyAdminCommand(new NodeMetricsStore(db), node.name, command)
    if (args.json) {
      io.out(
        JSON.stringify(
          r.ok ? { node: node.name, from: r.from, to: r.to } : { node: node.name, error: r.error },
        ) + '\n',
      )
      return r.ok ? EXIT.ok : EXIT.failed
    }
    if (!r.ok) {
      io.err(`yardmaster node ${node.name} ${op}: ${r.error}\n`)
      return EXIT.failed
    }
    const why = args.reason ? ` (${args.reason})` : ''
    const text = {
      drain: `${node.name} is draining${why}: its running jobs finish, it takes no new ones, then it is cordoned`,
      cordon: `${node.name} is cordoned${why}: it takes no new jobs; running ones go on`,
      resume: `${node.name} takes jobs again (it was ${r.from.kind})`,
    }[op]
    io.out(`${text}\n`)
    if (op !== 'resume') io.out(`undo with: yardmaster node ${node.name} resume\n`)
    return EXIT.ok
  } finally {
    db.close()
  }
}

/** Sessions as every node operation opens them: host keys checked against the data dir's store too. */
function sessionsFor(farm: Farm, args: ParsedArgs): NodeSessions {
  return new NodeSessions(farm, { dataDir: args.dataDir, acceptNewHostKeys: args.acceptNewHostKeys })
}

function trustFor(farm: Farm, args: ParsedArgs): HostTrust {
  return HostTrust.forFarm(farm, { dataDir: args.dataDir, acceptNew: args.acceptNewHostKeys })
}

async function testOperation(farm: Farm, node: FarmNode, args: ParsedArgs, io: CliIo): Promise<number> {
  // Behind a jump host, the fresh connection rides the jump host's (pooled) one.
  const sessions = sessionsFor(farm, args)
  let r
  try {
    r = await testConnection(node, trustFor(farm, args), { tunnel: () => sessions.tunnel(node) })
  } finally {
    await sessions.closeAll()
  }
  if (args.json) {
    io.out(JSON.stringify(r) + '\n')
    return EXIT.ok
  }
  const lines = [`${describeNode(node)}: ${paint(io, 32, 'reachable')}`]
  if (r.handshakeMs !== null)
    lines.push(`  SSH handshake  ${r.handshakeMs} ms (connect, key exchange, authentication)`)
  if (r.engineVersion !== null)
    lines.push(
      `  engine         Docker ${r.engineVersion} (API ${r.apiVersion ?? '?'}); first request ${r.firstRequestMs} ms`,
    )
  lines.push(
    `  round trip     ${r.roundTripMs} ms (median of ${r.samples} ${r.engineVersion !== null ? 'engine pings' : '`true` commands'})`,
  )
  io.out(lines.join('\n') + '\n')
  return EXIT.ok
}

async function engineOperation(
  farm: Farm,
  node: FarmNode,
  op: 'containers' | 'images' | 'prune',
  args: ParsedArgs,
  io: CliIo,
): Promise<number> {
  const sessions = sessionsFor(farm, args)
  try {
    const handle = await sessions.open(node)
    const result =
      op === 'containers'
        ? await listContainers(handle)
        : op === 'images'
          ? await listImages(handle)
          : await pruneNode(handle)
    if (args.json) io.out(JSON.stringify(result) + '\n')
    else if (op === 'containers') io.out(containersText(io, node, result as ContainerView[]))
    else if (op === 'images') io.out(imagesText(node, result as ImageView[]))
    else io.out(pruneText(node, result as PruneReport))
    return EXIT.ok
  } finally {
    await sessions.closeAll()
  }
}

/**
 * Trust on first use: the key the node offers (scanned, not trusted), then, once confirmed, a
 * line in the data dir's known_hosts. An already trusted key is said so; a changed one is
 * refused and never overwritten.
 */
async function trustOperation(farm: Farm, node: FarmNode, args: ParsedArgs, io: CliIo): Promise<number> {
  // --accept-new-host-keys applies to the jump hosts on the way, not to this key: that is asked below.
  const trust = HostTrust.forFarm(farm, { dataDir: args.dataDir })
  const sessions = sessionsFor(farm, args)
  let key: Buffer
  try {
    key = await scanNodeHostKey(node, trust, sessions)
  } finally {
    await sessions.closeAll()
  }
  const shown = hostKeyView(node, trust, key)
  // What --json has always given.
  const view = {
    node: shown.node,
    keyType: shown.keyType,
    fingerprint: shown.fingerprint,
    verdict: shown.verdict,
    recorded: false,
    file: shown.file,
  }
  const say = (text: string) => {
    if (!args.json) io.out(text)
  }
  const finish = (code: number) => {
    if (args.json) io.out(JSON.stringify(view) + '\n')
    return code
  }
  if (shown.verdict === 'trusted') {
    say(
      `${describeNode(node)}: its host key ${view.keyType} ${view.fingerprint} is already trusted (${shown.file}:${shown.line})\n`,
    )
    return finish(EXIT.ok)
  }
  if (shown.verdict !== 'unknown') {
    // Changed or revoked: trustHostKey refuses with the full story.
    try {
      trustHostKey(node, trust, key, shown.fingerprint)
    } catch (e) {
      io.err(`yardmaster node ${node.name} trust: ${(e as Error).message}\n`)
    }
    return finish(EXIT.failed)
  }
  say(
    `${describeNode(node)} offers this host key:\n  ${view.keyType} ${paint(io, 1, view.fingerprint)}\n` +
      `No known_hosts holds it (${trust.sources.join(', ')}).\n` +
      `Check it with the machine's owner before trusting it (on the machine: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub).\n`,
  )
  const confirmed =
    args.yes || (await confirm(io, `Trust this key for ${node.name}? Type "yes" to record it: `))
  if (!confirmed) {
    io.err(
      args.yes || process.stdin.isTTY
        ? `not recorded: ${node.name} stays untrusted\n`
        : `not recorded: confirm with --yes (no terminal to ask on), once the fingerprint is checked\n`,
    )
    return finish(EXIT.failed)
  }
  const { file } = trustHostKey(node, trust, key, shown.fingerprint)
  view.recorded = true
  view.file = file
  say(`recorded in ${file}: connections to ${node.name} now accept this key, and refuse any other\n`)
  return finish(EXIT.ok)
}

/** Asks on the terminal; without one (a script, a pipe) there is nobody to ask: not confirmed. */
async function confirm(io: CliIo, question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    return (await rl.question(question)).trim().toLowerCase() === 'yes'
  } finally {
    rl.close()
  }
}

function containersText(io: CliIo, node: FarmNode, cs: ContainerView[]): string {
  const ours = cs.filter((c) => c.managed).length
  const summary = `${cs.length} container${cs.length === 1 ? '' : 's'} on ${node.name}: ${ours} made by Yardmaster, ${cs.length - ours} other${cs.length - ours === 1 ? '' : 's'}\n`
  if (!cs.length) return summary
  const rows = cs.map((c) => [
    c.id,
    c.name,
    c.image,
    c.state,
    c.managed ? `yes${c.runId ? ` (run ${c.runId}${c.jobKey ? `, job ${c.jobKey}` : ''})` : ''}` : 'no',
    c.status,
  ])
  const table = formatTable(['ID', 'NAME', 'IMAGE', 'STATE', 'YARDMASTER', 'STATUS'], rows, (r, col, t) =>
    col === 4 && cs[r]!.managed ? paint(io, 36, t) : t,
  )
  return table + summary
}

function imagesText(node: FarmNode, is: ImageView[]): string {
  const summary = `${is.length} image${is.length === 1 ? '' : 's'} on ${node.name}\n`
  if (!is.length) return summary
  const rows = is.map((i) => [
    i.id,
    i.tags.length ? i.tags.join(', ') : '<dangling>',
    formatBytes(i.sizeBytes),
    new Date(i.createdAt).toISOString().slice(0, 10),
  ])
  return formatTable(['ID', 'TAGS', 'SIZE', 'CREATED'], rows) + summary
}

function pruneText(node: FarmNode, r: PruneReport): string {
  const lines: string[] = []
  const list = (what: string, items: string[]) => {
    if (items.length)
      lines.push(`removed ${items.length} ${what}${items.length === 1 ? '' : 's'}: ${items.join(', ')}`)
  }
  list(
    'stopped Yardmaster container',
    r.containers.map((c) => `${c.name} (${c.id})`),
  )
  list('Yardmaster volume', r.volumes)
  list('dangling image', r.images)
  for (const k of r.kept) lines.push(`kept ${k.what}: ${k.reason}`)
  if (!r.containers.length && !r.volumes.length && !r.images.length)
    lines.unshift(
      `nothing to prune on ${node.name}: no stopped Yardmaster containers, no Yardmaster volumes, no dangling images`,
    )
  else lines.push(`reclaimed ${formatBytes(r.reclaimedBytes)} on ${node.name}`)
  return lines.join('\n') + '\n'
}

async function copyOperation(
  farm: Farm,
  node: FarmNode,
  rest: string[],
  args: ParsedArgs,
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const [image, ...extra] = rest
  if (!image)
    throw new NodeUsageError(
      `copy-image: which image? e.g. node ${node.name} copy-image lab/busybox:1 --from n1`,
    )
  if (extra.length) throw new NodeUsageError(`copy-image takes one image, but was given: ${rest.join(' ')}`)
  const from = args.from
  if (!from)
    throw new NodeUsageError(
      `copy-image needs --from <node|${LOCAL_ENGINE}>: where the image is now ` +
        `(nodes: ${farm.nodes.map((n) => n.name).join(', ')})`,
    )

  const sessions = sessionsFor(farm, args)
  try {
    const progress = progressPrinter(io, image, from, node.name)
    const r = await copyImageFrom(farm, node, image, from, (n) => sessions.open(n), {
      onProgress: progress.update,
      signal,
    })
    progress.done()
    const id = shortId(r.imageId)
    if (r.outcome === 'present')
      io.out(`${node.name} already has ${image} (the same image, ${id}); nothing was copied\n`)
    else {
      io.out(
        `copied ${image} from ${from} to ${node.name}: ${formatBytes(r.bytes)} in ${(r.ms / 1000).toFixed(1)} s (image ${id})\n`,
      )
      if (r.replacedImageId)
        io.out(
          `${node.name} had another image under that name (${shortId(r.replacedImageId)}); it is now untagged, ` +
            `and \`yardmaster node ${node.name} prune\` removes it if nothing uses it\n`,
        )
    }
    return EXIT.ok
  } finally {
    await sessions.closeAll()
  }
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}

/** Progress on stderr: rewritten in place on a terminal; otherwise a line every few seconds, none for a quick copy. */
function progressPrinter(io: CliIo, image: string, from: string, to: string) {
  let lastLine = Date.now()
  let shown = false
  return {
    update: (p: { bytes: number; expectedBytes: number | null }) => {
      const text = `copying ${image} from ${from} to ${to}: ${formatBytes(p.bytes)}${p.expectedBytes ? ` of about ${formatBytes(p.expectedBytes)}` : ''}`
      if (io.color) {
        io.err(`\r${text}\x1b[K`)
        shown = true
      } else if (Date.now() - lastLine >= 3000) {
        io.err(text + '\n')
        lastLine = Date.now()
      }
    },
    done: () => {
      if (shown) io.err('\n')
    },
  }
}
