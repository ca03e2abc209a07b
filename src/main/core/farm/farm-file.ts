/**
 * Reads and checks a farm file (YAML). Every problem is reported with file, line, column and
 * field in one pass.
 *
 *   knownHosts: ~/.ssh/known_hosts     # optional, this is the default
 *   nodes:
 *     - name: n1
 *       host: 10.0.0.5                  # or `local` for this machine, without SSH
 *       port: 22                        # default 22
 *       user: ci                        # required for SSH nodes
 *       identityFile: ~/.ssh/id_ed25519 # default: the ssh-agent
 *       executor: docker                # docker (default) | shell
 *       labels: [linux, gpu]
 *       slots: 2                        # concurrent jobs, default 1
 *       defaultImage: debian:bookworm   # for jobs without `container:`
 *       jump: bastion                   # reached through that node's SSH connection (ProxyJump)
 *       health: { loadPerCore: 4 }      # this node's limits, over the farm's
 *   health:                             # when a node that answers counts as degraded (readHealth)
 *     diskFree: 5g
 *   preemption: true                    # a hotfix may stop a running `low` job (requeued); default false
 *   cancelGraceSeconds: 10              # a cancelled step gets SIGTERM, then SIGKILL this long after; default 10
 *   logCapPerJob: 2g                    # most output kept per job attempt; default: all of it
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, posix, resolve } from 'node:path'
import { isMap, isScalar, isSeq, type Node } from 'yaml'
import { parseSize } from '../workflow/container-options'
import { checkKeys, describe, loadYamlFile, parseYaml, suggest, YamlSource } from '../source/yaml-source'
import {
  LOCAL_HOST,
  type ExecutorKind,
  type Farm,
  type FarmNode,
  type HealthLimits,
  type Platform,
} from './farm-model'

const FARM_KEYS = [
  'knownHosts',
  'nodes',
  'platforms',
  'health',
  'preemption',
  'cancelGraceSeconds',
  'logCapPerJob',
] as const
const NODE_KEYS = [
  'name',
  'host',
  'port',
  'user',
  'identityFile',
  'executor',
  'labels',
  'slots',
  'defaultImage',
  'cpus',
  'memory',
  'jump',
  'health',
  'allowedHostPaths',
] as const
/** `health:` keys; all but `diskFree` are the HealthLimits fields of the same name. */
const HEALTH_KEYS = ['loadPerCore', 'memoryUsedPct', 'diskFree', 'engineSlowMs', 'clockSkewMs'] as const
const HEALTH_UNSUPPORTED: Record<string, string> = {
  diskFreeBytes: 'write "diskFree", a size such as 5g or 500m',
}
const EXECUTORS: readonly ExecutorKind[] = ['docker', 'shell']
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export function defaultKnownHosts(): string {
  return join(homedir(), '.ssh', 'known_hosts')
}

/** Reads and checks a farm file; the farm carries the digest of the bytes it was read from. */
export function loadFarmFile(file: string): Farm {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch {
    return loadYamlFile('farm', file, readFarm) // throws, saying why the file cannot be read
  }
  return { ...parseFarm(file, bytes.toString('utf8')), digest: farmDigest(bytes) }
}

/** SHA-256 (hex) of a farm file's bytes (`Farm.digest`). */
export function farmDigest(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function parseFarm(file: string, text: string): Farm {
  return parseYaml('farm', file, text, readFarm)
}

function readFarm(src: YamlSource): Farm | null {
  const top = src.entries(src.root, '', 'a farm (with "nodes:")')
  if (!top) return null
  checkKeys(src, top, FARM_KEYS, '')
  const base = dirname(resolve(src.file))
  const khEntry = top.find((e) => e.key === 'knownHosts')
  const kh = khEntry ? src.string(khEntry.value, 'knownHosts') : null
  const nodesEntry = top.find((e) => e.key === 'nodes')
  const nodes: FarmNode[] = []
  if (!nodesEntry) src.report(src.root, 'nodes', 'a farm file needs "nodes:", a list of at least one node')
  else if (!isSeq(nodesEntry.value)) {
    src.report(nodesEntry.value ?? nodesEntry.keyNode, 'nodes', '"nodes" must be a list of nodes')
  } else {
    const items = nodesEntry.value.items as Node[]
    if (items.length === 0) src.report(nodesEntry.value, 'nodes', '"nodes" needs at least one node')
    const jumps: JumpDeclaration[] = []
    items.forEach((item, i) => {
      const node = readNode(src, item, `nodes[${i}]`, base, jumps)
      if (!node) return
      if (nodes.some((n) => n.name === node.name)) {
        const nameNode = isMap(item) ? (item.get('name', true) as Node | undefined) : undefined
        src.report(nameNode ?? item, `nodes[${i}].name`, `node name "${node.name}" is used twice`)
      }
      nodes.push(node)
    })
    checkJumps(src, nodes, jumps)
  }
  const platformsEntry = top.find((e) => e.key === 'platforms')
  const platforms = platformsEntry ? readPlatforms(src, platformsEntry.value) : {}
  const healthEntry = top.find((e) => e.key === 'health')
  const health = healthEntry ? readHealth(src, healthEntry.value, 'health') : null
  const preemptionEntry = top.find((e) => e.key === 'preemption')
  let preemption = false
  if (preemptionEntry) {
    const v = preemptionEntry.value
    if (isScalar(v) && typeof v.value === 'boolean') preemption = v.value
    else src.report(v ?? preemptionEntry.keyNode, 'preemption', '"preemption" must be true or false')
  }
  const graceEntry = top.find((e) => e.key === 'cancelGraceSeconds')
  let cancelGraceSeconds: number | null = null
  if (graceEntry) {
    const v = graceEntry.value
    if (isScalar(v) && typeof v.value === 'number' && v.value >= 0 && v.value <= 3600)
      cancelGraceSeconds = v.value
    else
      src.report(
        v ?? graceEntry.keyNode,
        'cancelGraceSeconds',
        '"cancelGraceSeconds" must be a number of seconds from 0 to 3600 (how long a cancelled step has between SIGTERM and SIGKILL)',
      )
  }
  const capEntry = top.find((e) => e.key === 'logCapPerJob')
  let logCapPerJob: number | null = null
  if (capEntry) {
    const v = capEntry.value
    const bytes = isScalar(v) ? parseSize(String(v.value)) : null
    if (bytes !== null && bytes >= 1024 * 1024) logCapPerJob = bytes
    else
      src.report(
        v ?? capEntry.keyNode,
        'logCapPerJob',
        '"logCapPerJob" must be a size of at least 1m, such as 500m or 2g (the most output kept per job attempt)',
      )
  }
  return {
    file: src.file,
    knownHosts: kh ? expandPath(kh, base) : defaultKnownHosts(),
    nodes,
    platforms,
    ...(health ? { health } : {}),
    ...(preemption ? { preemption } : {}),
    ...(cancelGraceSeconds !== null ? { cancelGraceSeconds } : {}),
    ...(logCapPerJob !== null ? { logCapPerJob } : {}),
  }
}

/**
 * When a node that answers counts as degraded, farm-wide (top level) or for one node (its keys
 * win over the farm's; what neither gives takes the default):
 *
 *   health:
 *     loadPerCore: 4      # 1-minute load per core above which (default 2)
 *     memoryUsedPct: 98   # percent of memory used above which (default 95)
 *     diskFree: 5g        # free space on / or the engine's data root below which (default 2g)
 *     engineSlowMs: 3000  # engine ping slower than this (default 2000)
 *     clockSkewMs: 60000  # clock off by more than this, either way (default 30000)
 *
 * Numbers must be YAML numbers above 0 (a percentage at most 100); `diskFree` a size above 0.
 */
function readHealth(src: YamlSource, node: Node | null, path: string): HealthLimits | null {
  const items = src.entries(node, path, 'health limits (loadPerCore, memoryUsedPct, diskFree, …)')
  if (!items) return null
  checkKeys(src, items, HEALTH_KEYS, path, HEALTH_UNSUPPORTED)
  const out: HealthLimits = {}
  for (const { key, value } of items) {
    const at = `${path}.${key}`
    if (key === 'diskFree') {
      const text = src.string(value, at)
      if (text === null) continue
      const bytes = parseSize(text)
      if (bytes === null || bytes <= 0)
        src.report(
          value,
          at,
          `diskFree must be a size above 0 such as 5g or 500m, not ${JSON.stringify(text)}`,
        )
      else out.diskFreeBytes = bytes
      continue
    }
    if (!(HEALTH_KEYS as readonly string[]).includes(key)) continue
    const k = key as Exclude<(typeof HEALTH_KEYS)[number], 'diskFree'>
    const n = isScalar(value) && typeof value.value === 'number' ? value.value : null
    const max = k === 'memoryUsedPct' ? 100 : Infinity
    if (n === null || !Number.isFinite(n) || n <= 0 || n > max)
      src.report(
        value,
        at,
        `${k} must be a number above 0${max < Infinity ? ` and at most ${max}` : ''} ` +
          `(${HEALTH_HINTS[k]}), found ${describe(value)}`,
      )
    else out[k] = n
  }
  return out
}

const HEALTH_HINTS: Record<Exclude<(typeof HEALTH_KEYS)[number], 'diskFree'>, string> = {
  loadPerCore: '1-minute load per core, such as 4',
  memoryUsedPct: 'percent of memory used, such as 98',
  engineSlowMs: 'milliseconds, such as 3000',
  clockSkewMs: 'milliseconds, such as 60000',
}

/**
 *   platforms:
 *     ubuntu-latest: debian:bookworm                        # image only: any docker node
 *     ubuntu-22.04: { image: ubuntu:22.04, labels: [x64] }  # image, and the labels a node needs
 */
function readPlatforms(src: YamlSource, node: Node | null): Record<string, Platform> {
  const out: Record<string, Platform> = {}
  for (const { key, value } of src.entries(node, 'platforms', 'a mapping of runner labels to images') ?? []) {
    const path = `platforms.${key}`
    if (isMap(value)) {
      const items = src.entries(value, path, 'a platform') ?? []
      checkKeys(src, items, ['image', 'labels'], path)
      const imageEntry = items.find((e) => e.key === 'image')
      if (!imageEntry) {
        src.report(value, `${path}.image`, `platform "${key}" needs an "image"`)
        continue
      }
      const image = src.string(imageEntry.value, `${path}.image`)
      const labelsEntry = items.find((e) => e.key === 'labels')
      const labels = labelsEntry ? (src.stringList(labelsEntry.value, `${path}.labels`) ?? []) : []
      if (image) out[key.toLowerCase()] = { image, labels: labels.map((l) => l.toLowerCase()) }
    } else {
      const image = src.string(value, path)
      if (image) out[key.toLowerCase()] = { image, labels: [] }
    }
  }
  return out
}

/** `--platform LABEL=IMAGE` entries, over the farm file's platforms. */
export function withPlatforms(farm: Farm, given: Record<string, string>): Farm {
  const platforms = { ...farm.platforms }
  for (const [label, image] of Object.entries(given))
    platforms[label.toLowerCase()] = { image, labels: platforms[label.toLowerCase()]?.labels ?? [] }
  return { ...farm, platforms }
}

/** A `jump:` as written, kept with its YAML node so problems point at it. */
interface JumpDeclaration {
  from: string
  to: string
  value: Node | null
  path: string
}

/**
 * Every `jump:` must name another SSH node of the farm, and following them must end at a node
 * reached directly: unknown names get a did-you-mean, a cycle is reported once, as its path.
 */
function checkJumps(src: YamlSource, nodes: FarmNode[], jumps: JumpDeclaration[]): void {
  const byName = new Map(nodes.map((n) => [n.name, n]))
  const bad = new Set<string>()
  for (const j of jumps) {
    const target = byName.get(j.to)
    if (j.to === j.from) {
      src.report(j.value, j.path, `node "${j.from}" cannot be its own jump host`)
      bad.add(j.from)
    } else if (!target) {
      const guess = suggest(
        j.to,
        [...byName.keys()].filter((n) => n !== j.from),
      )
      src.report(
        j.value,
        j.path,
        `jump host "${j.to}" is not a node of this farm` +
          (guess ? `; did you mean "${guess}"?` : `; nodes: ${[...byName.keys()].join(', ')}`),
      )
      bad.add(j.from)
    } else if (target.host === LOCAL_HOST) {
      src.report(
        j.value,
        j.path,
        `jump host "${j.to}" is this machine (host: local), which has no SSH connection to carry another; ` +
          'remove "jump" to connect directly',
      )
      bad.add(j.from)
    }
  }
  const reported = new Set<string>()
  for (const j of jumps) {
    if (bad.has(j.from) || reported.has(j.from)) continue
    const path = [j.from]
    let next: string | null | undefined = j.to
    while (next && !bad.has(next) && !path.includes(next)) {
      path.push(next)
      next = byName.get(next)?.jump
    }
    if (!next || bad.has(next) || next !== j.from) continue
    path.push(next)
    path.forEach((n) => reported.add(n))
    src.report(
      j.value,
      j.path,
      `jump hosts form a cycle: ${path.join(' -> ')}; one of these nodes must be reached directly`,
    )
  }
}

function readNode(
  src: YamlSource,
  node: Node,
  path: string,
  base: string,
  jumps: JumpDeclaration[],
): FarmNode | null {
  const items = src.entries(node, path, 'a node')
  if (!items) return null
  checkKeys(src, items, NODE_KEYS, path)
  const get = (k: string) => items.find((e) => e.key === k)
  const required = (k: string): string | null => {
    const e = get(k)
    if (!e) {
      src.report(node, `${path}.${k}`, `a node needs "${k}"`)
      return null
    }
    return src.string(e.value, `${path}.${k}`)
  }

  const name = required('name')
  if (name !== null && !NODE_NAME.test(name)) {
    src.report(
      get('name')?.value,
      `${path}.name`,
      `node name "${name}" may contain only letters, digits, ".", "-" and "_"`,
    )
  }
  const host = required('host')
  const local = host === LOCAL_HOST
  const userEntry = get('user')
  const user = userEntry ? src.string(userEntry.value, `${path}.user`) : null
  if (!local && !userEntry) src.report(node, `${path}.user`, 'a node reached over SSH needs "user"')
  const portEntry = get('port')
  const port = portEntry ? src.integer(portEntry.value, `${path}.port`, 1) : 22
  if (port !== null && port > 65535)
    src.report(portEntry?.value, `${path}.port`, `port ${port} is out of range (1-65535)`)

  const executorEntry = get('executor')
  let executor: ExecutorKind = 'docker'
  if (executorEntry) {
    const e = src.string(executorEntry.value, `${path}.executor`)
    if (e !== null && !(EXECUTORS as readonly string[]).includes(e)) {
      const guess = suggest(e, EXECUTORS)
      src.report(
        executorEntry.value,
        `${path}.executor`,
        `executor "${e}" is unknown; use ${EXECUTORS.join(' or ')}` +
          (guess ? ` (did you mean "${guess}"?)` : ''),
      )
    } else if (e !== null) executor = e as ExecutorKind
  }

  const labelsEntry = get('labels')
  const labels = labelsEntry ? (src.stringList(labelsEntry.value, `${path}.labels`) ?? []) : []
  if (labelsEntry) {
    // Each label where it stands: `[linux gpu]` is one label with a space, a likely mistake.
    const items = isSeq(labelsEntry.value) ? labelsEntry.value.items : [labelsEntry.value]
    items.forEach((item, i) => {
      const s = isScalar(item) && typeof item.value === 'string' ? item.value : null
      const problem = s === null ? null : labelProblem(s)
      if (problem)
        src.report(item as Node, `${path}.labels${isSeq(labelsEntry.value) ? `[${i}]` : ''}`, problem)
    })
  }
  const slotsEntry = get('slots')
  const slots = slotsEntry ? src.integer(slotsEntry.value, `${path}.slots`, 1) : 1
  const idEntry = get('identityFile')
  const identity = idEntry ? src.string(idEntry.value, `${path}.identityFile`) : null
  const imageEntry = get('defaultImage')
  const defaultImage = imageEntry ? src.string(imageEntry.value, `${path}.defaultImage`) : null
  const imageIssue = defaultImage === null ? null : imageProblem(defaultImage)
  if (imageIssue) src.report(imageEntry?.value ?? null, `${path}.defaultImage`, imageIssue)
  const cpusEntry = get('cpus')
  let cpus: number | null = null
  if (cpusEntry) {
    const v = Number(src.string(cpusEntry.value, `${path}.cpus`))
    if (!Number.isFinite(v) || v <= 0)
      src.report(cpusEntry.value, `${path}.cpus`, 'cpus must be a positive number')
    else cpus = v
  }
  const memoryEntry = get('memory')
  let memoryBytes: number | null = null
  if (memoryEntry) {
    const text = src.string(memoryEntry.value, `${path}.memory`)
    memoryBytes = text === null ? null : parseSize(text)
    if (text !== null && !memoryBytes)
      src.report(
        memoryEntry.value,
        `${path}.memory`,
        `memory must be a size such as 16g or 512m, not "${text}"`,
      )
  }

  const jumpEntry = get('jump')
  const jump = jumpEntry ? src.string(jumpEntry.value, `${path}.jump`) : null
  if (jump !== null && local)
    src.report(
      jumpEntry?.value,
      `${path}.jump`,
      'a node with host: local is this machine, reached without SSH; it cannot have a jump host',
    )
  else if (jump !== null && name !== null)
    jumps.push({ from: name, to: jump, value: jumpEntry?.value ?? null, path: `${path}.jump` })

  const healthEntry = get('health')
  const health = healthEntry ? readHealth(src, healthEntry.value, `${path}.health`) : null
  const hostPathsEntry = get('allowedHostPaths')
  const allowedHostPaths = hostPathsEntry
    ? readHostPaths(src, hostPathsEntry.value, `${path}.allowedHostPaths`)
    : []

  if (name === null || host === null || port === null || slots === null) return null
  const at = src.position(node)
  return {
    name,
    host,
    port,
    user: user ?? '',
    identityFile: identity ? expandPath(identity, base) : null,
    executor,
    labels: normalizeLabels(labels),
    slots,
    defaultImage,
    cpus,
    memoryBytes,
    jump,
    ...(health ? { health } : {}),
    ...(allowedHostPaths.length ? { allowedHostPaths } : {}),
    source: { file: src.file, line: at.line, col: at.col },
  }
}

/**
 * `allowedHostPaths: [/srv/cache, /var/run/docker.sock]`: the host folders (and files) a job's
 * `container.volumes` and services' volumes may bind-mount on this node: exactly these.
 * Absolute, normalised paths; anything else is refused where it stands, and so is a path under
 * another one: a job mounting the outer one could put a symlink where the inner one is, and the
 * engine follows symlinks in a bind's source.
 */
function readHostPaths(src: YamlSource, value: Node | null, path: string): string[] {
  const paths = src.stringList(value, path) ?? []
  const items = isSeq(value) ? value.items : [value]
  const out: string[] = []
  paths.forEach((p, i) => {
    const where = isSeq(value) ? `${path}[${i}]` : path
    const item = (items[i] ?? value) as Node | null
    const trimmed = p.replace(/\/+$/, '') || '/'
    const normal = posix.normalize(trimmed)
    if (!p.startsWith('/'))
      src.report(item, where, `"${p}" is not an absolute path; host paths start with "/"`)
    else if (normal !== trimmed) src.report(item, where, `write "${normal}" rather than "${p}"`)
    else {
      const outer = out.find((o) => trimmed.startsWith(o === '/' ? '/' : `${o}/`))
      const inner = out.find((o) => o.startsWith(trimmed === '/' ? '/' : `${trimmed}/`))
      if (outer || inner)
        src.report(
          item,
          where,
          `"${trimmed}" lies ${outer ? `under "${outer}"` : `above "${inner}"`}: a job that mounts the outer one ` +
            'could leave a symlink where the inner one is, and the engine follows it; keep only one of them',
        )
      else out.push(trimmed)
    }
  })
  return out
}

/** Why a label cannot be one (empty, spaces or commas, control characters); null when it can. */
export function labelProblem(label: string): string | null {
  if (label === '') return 'a label cannot be empty'
  if (/[\s,]/.test(label))
    return `label ${JSON.stringify(label)} may not contain spaces or commas; give each label on its own`
  if (/\p{Cc}/u.test(label)) return `label ${JSON.stringify(label)} may not contain control characters`
  return null
}

/** Why a string cannot be an image name (empty, spaces, control characters); null when it can. */
export function imageProblem(image: string): string | null {
  return image === '' || /[\s\p{Cc}]/u.test(image)
    ? `an image name such as debian:bookworm has no spaces, not ${JSON.stringify(image)}`
    : null
}

/** Every node carries `self-hosted`, as GitHub's self-hosted runners do; labels match case-insensitively. */
export function normalizeLabels(labels: readonly string[]): string[] {
  return [...new Set(['self-hosted', ...labels.map((l) => l.toLowerCase())])]
}

export function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1))
  return isAbsolute(p) ? p : resolve(base, p)
}
