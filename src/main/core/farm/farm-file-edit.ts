/**
 * Writes a node's declared fields (labels, slots, defaultImage) back to its farm file, with
 * everything else kept byte for byte: comments, blank lines, key order, quoting, flow or block
 * style.
 *
 * The file is parsed with `yaml`'s Document API only to find where things are; the edit itself
 * splices the original text at those places (re-stringifying the document would reflow
 * comments and spacing elsewhere). The edited text is parsed again as a farm and compared with
 * the farm before: it must be valid, carry the new values, and nothing else may have changed,
 * or nothing is written. The write is atomic: a new file next to the old one, synced, then
 * renamed over it, with the old file's mode.
 */
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import {
  isMap,
  isScalar,
  isSeq,
  parse,
  parseDocument,
  type Node,
  type Pair,
  type Scalar,
  type YAMLMap,
} from 'yaml'
import type { NodeEdit } from '../../../shared/model'
import { formatProblem, InvalidSourceError } from '../source/source-error'
import { suggest } from '../source/yaml-source'
import { farmDigest, imageProblem, labelProblem, normalizeLabels, parseFarm } from './farm-file'
import type { Farm, FarmNode } from './farm-model'

export type FarmEditErrorCode =
  /** The embedded default farm: there is no file to write. */
  | 'no-file'
  | 'unknown-node'
  /** The edit is empty, or a value is not acceptable; the message says which and why. */
  | 'invalid-edit'
  /** The file is not the one the farm was loaded from (edited in an editor since): reload. */
  | 'changed-on-disk'
  /** Writing failed (read-only directory, full disk); the file was left as it was. */
  | 'write-failed'

export class FarmEditError extends Error {
  constructor(
    readonly code: FarmEditErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'FarmEditError'
  }
}

/** The fields a console edit may change, checked and normalized. */
interface WantedEdit {
  labels?: string[]
  slots?: number
  defaultImage?: string | null
}

const EDIT_KEYS = ['labels', 'slots', 'defaultImage'] as const

/**
 * Changes `nodeName`'s declared fields in `farm`'s file and returns the farm parsed from the
 * written file (with its new digest). Only the changed keys of that node change in the file.
 * Throws FarmEditError, with what to do next, and writes nothing when the farm has no file, the
 * node is unknown, the edit is empty or invalid, the file changed on disk since `farm` was
 * loaded (`farm.digest`), or the file cannot be written.
 */
export function editNodeInFarmFile(farm: Farm, nodeName: string, edit: NodeEdit): Farm {
  const file = farm.file
  if (file === null) {
    throw new FarmEditError(
      'no-file',
      'there is no farm file to write: this is the built-in farm (this machine alone). Create one with ' +
        'the nodes you want (a "nodes:" list of name, host, user, labels, slots, defaultImage; see ' +
        'resources/farm.example.yml and docs/farm.md), then start Yardmaster with it: ' +
        '`yardmaster serve --farm <file>`, or YARDMASTER_FARM=<file> for the desktop app',
    )
  }
  const wanted = checkEdit(edit)
  if (!farm.nodes.some((n) => n.name === nodeName)) {
    const names = farm.nodes.map((n) => n.name)
    const guess = suggest(nodeName, names)
    throw new FarmEditError(
      'unknown-node',
      `node "${nodeName}" is not in the farm file ${file}` +
        (guess ? `; did you mean "${guess}"?` : '') +
        ` (its nodes: ${names.join(', ')})`,
    )
  }

  const target = realTarget(file)
  const bytes = readCurrent(file, target)
  if (!farm.digest || farmDigest(bytes) !== farm.digest) {
    throw new FarmEditError(
      'changed-on-disk',
      `the farm file ${file} changed on disk since it was loaded` +
        (farm.digest ? '' : ' (or this farm was not loaded from it with its digest)') +
        '; nothing was written. Reload the farm, check the node, and make the edit again',
    )
  }
  const text = bytes.toString('utf8')
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new FarmEditError(
      'invalid-edit',
      `the farm file ${file} is not valid UTF-8, so it cannot be rewritten without changing other ` +
        'bytes; nothing was written. Save it as UTF-8 and reload',
    )
  }
  const before = parseFarm(file, text)
  const edited = applyEdit(text, nodeName, wanted)
  if (edited === text) return { ...before, digest: farm.digest }

  let after: Farm
  try {
    after = parseFarm(file, edited)
  } catch (e) {
    // Values are checked beforehand; this is the last line of defence, so it is never written.
    if (!(e instanceof InvalidSourceError)) throw e
    throw new FarmEditError(
      'invalid-edit',
      `the edit of node "${nodeName}" would make the farm file invalid, so nothing was written:\n` +
        e.problems.map((p) => '  ' + formatProblem(p)).join('\n'),
    )
  }
  if (!onlyEdited(before, after, nodeName, wanted)) {
    throw new FarmEditError(
      'invalid-edit',
      `the edit of node "${nodeName}" could not be written without changing something else in ` +
        `${file}; nothing was written. Edit the file by hand`,
    )
  }
  writeFileAtomically(target, edited, () => {
    if (farmDigest(readCurrent(file, target)) !== farm.digest)
      throw new FarmEditError(
        'changed-on-disk',
        `the farm file ${file} changed on disk while the edit was being written; nothing was ` +
          'written. Reload the farm and make the edit again',
      )
  })
  return { ...after, digest: farmDigest(edited) }
}

/** Checks the edit's values as the farm file parser would take them, and a little more. */
function checkEdit(edit: NodeEdit): WantedEdit {
  const problems: string[] = []
  const out: WantedEdit = {}
  if (typeof edit !== 'object' || edit === null || Array.isArray(edit)) {
    throw new FarmEditError('invalid-edit', 'a node edit is an object with labels, slots or defaultImage')
  }
  for (const key of Object.keys(edit)) {
    if (!(EDIT_KEYS as readonly string[]).includes(key))
      problems.push(`"${key}" cannot be edited here (only ${EDIT_KEYS.join(', ')})`)
  }
  if (edit.labels !== undefined) {
    if (!Array.isArray(edit.labels)) problems.push('labels must be a list of strings')
    else {
      const seen = new Set<string>(['self-hosted'])
      const labels: string[] = []
      for (const label of edit.labels as unknown[]) {
        const problem = typeof label === 'string' ? labelProblem(label) : null
        if (typeof label !== 'string') problems.push(`label ${JSON.stringify(label)} is not a string`)
        else if (problem) problems.push(problem)
        else if (!seen.has(label.toLowerCase())) {
          // Labels match case-insensitively; `self-hosted` is every node's already.
          seen.add(label.toLowerCase())
          labels.push(label)
        }
      }
      out.labels = labels
    }
  }
  if (edit.slots !== undefined) {
    if (typeof edit.slots !== 'number' || !Number.isSafeInteger(edit.slots) || edit.slots < 1)
      problems.push(`slots must be a whole number of at least 1, not ${JSON.stringify(edit.slots)}`)
    else out.slots = edit.slots
  }
  if (edit.defaultImage !== undefined) {
    const image: unknown = edit.defaultImage
    if (image === null) out.defaultImage = null
    else if (typeof image !== 'string' || imageProblem(image))
      problems.push(
        `defaultImage must be an image name such as debian:bookworm (or null to remove it), not ${JSON.stringify(image)}`,
      )
    else out.defaultImage = image
  }
  if (problems.length)
    throw new FarmEditError(
      'invalid-edit',
      `the node edit is invalid; nothing was written: ${problems.join('; ')}`,
    )
  if (out.labels === undefined && out.slots === undefined && out.defaultImage === undefined)
    throw new FarmEditError(
      'invalid-edit',
      'the node edit changes nothing: give labels, slots or defaultImage',
    )
  return out
}

/** The file to replace: the target of a symbolic link, so the link stays a link. */
function realTarget(file: string): string {
  try {
    return fs.realpathSync(file)
  } catch (e) {
    throw unreadable(file, e)
  }
}

function readCurrent(file: string, target: string): Buffer {
  try {
    return fs.readFileSync(target)
  } catch (e) {
    throw unreadable(file, e)
  }
}

function unreadable(file: string, e: unknown): FarmEditError {
  return new FarmEditError(
    'changed-on-disk',
    `cannot read the farm file ${file} (${(e as Error).message}); nothing was written. ` +
      'Check that it is still there and reload the farm',
  )
}

/** True when `after` is `before` with the edit made, and nothing else changed. */
function onlyEdited(before: Farm, after: Farm, nodeName: string, wanted: WantedEdit): boolean {
  const strip = (n: FarmNode) => ({ ...n, source: null })
  const expected = before.nodes.map((n) =>
    n.name !== nodeName
      ? strip(n)
      : strip({
          ...n,
          ...(wanted.labels !== undefined ? { labels: normalizeLabels(wanted.labels) } : {}),
          ...(wanted.slots !== undefined ? { slots: wanted.slots } : {}),
          ...(wanted.defaultImage !== undefined ? { defaultImage: wanted.defaultImage } : {}),
        }),
  )
  return (
    isDeepStrictEqual(after.nodes.map(strip), expected) &&
    after.knownHosts === before.knownHosts &&
    isDeepStrictEqual(after.platforms, before.platforms) &&
    isDeepStrictEqual(after.health, before.health)
  )
}

// ---------------------------------------------------------------------------------------------
// The text edit

/** A replacement of `text.slice(start, end)` by `insert`. */
interface Splice {
  start: number
  end: number
  insert: string
}

type ScalarStyle = 'PLAIN' | 'QUOTE_SINGLE' | 'QUOTE_DOUBLE'

/**
 * The farm file text with the node's fields set as `wanted` says. Pure: positions come from
 * `yaml`'s document, and only the text at the changed keys is replaced.
 */
function applyEdit(text: string, nodeName: string, wanted: WantedEdit): string {
  const doc = parseDocument(text, { uniqueKeys: true })
  const nodes = isMap(doc.contents) ? doc.contents.get('nodes', true) : null
  const map = isSeq(nodes)
    ? (nodes.items as Node[]).find(
        (item): item is YAMLMap => isMap(item) && String(scalarValue(item.get('name', true))) === nodeName,
      )
    : undefined
  if (!map) throw new Error(`node "${nodeName}" is not in the farm file`)
  const t = new TextTools(text)
  const splices: Splice[] = []
  if (wanted.labels !== undefined) splices.push(...editLabels(t, map, wanted.labels))
  if (wanted.slots !== undefined)
    splices.push(...setScalar(t, map, 'slots', String(wanted.slots), wanted.slots))
  if (wanted.defaultImage === null) splices.push(...deletePair(t, map, 'defaultImage'))
  else if (wanted.defaultImage !== undefined) {
    const old = pairOf(map, 'defaultImage')?.value
    const style = isScalar(old) ? styleOf(old) : 'PLAIN'
    splices.push(
      ...setScalar(t, map, 'defaultImage', renderScalar(wanted.defaultImage, style), wanted.defaultImage),
    )
  }
  return applySplices(text, splices)
}

function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : undefined
}

function pairOf(map: YAMLMap, key: string): Pair<Node, Node | null> | undefined {
  return (map.items as Pair<Node, Node | null>[]).find((p) => isScalar(p.key) && String(p.key.value) === key)
}

function styleOf(node: Scalar): ScalarStyle {
  return node.type === 'QUOTE_SINGLE' || node.type === 'QUOTE_DOUBLE' ? node.type : 'PLAIN'
}

/** `value` as a YAML scalar in `style` when it can be, else double-quoted. */
function renderScalar(value: string, style: ScalarStyle): string {
  if (style === 'QUOTE_SINGLE') return `'${value.replace(/'/g, "''")}'`
  if (style === 'PLAIN' && isPlainSafe(value)) return value
  return JSON.stringify(value)
}

/**
 * Plain when it reads back as the same string, in block and flow context alike: no spaces, no
 * flow indicators (`[]{},`), no comment, quote, anchor or tag characters, and not a word YAML
 * reads as something else (`true`, `null`, `1.5`).
 */
function isPlainSafe(value: string): boolean {
  if (!/^[A-Za-z0-9_./=+~-][A-Za-z0-9_./=@+~:%$^()<>;-]*$/.test(value) || value.endsWith(':')) return false
  try {
    return parse(value) === value
  } catch {
    return false
  }
}

/** Sets a scalar field: replaces its value, or adds the key when the node has none. */
function setScalar(t: TextTools, map: YAMLMap, key: string, rendered: string, value: unknown): Splice[] {
  const pair = pairOf(map, key)
  if (!pair) return [insertPair(t, map, `${key}: ${rendered}`)]
  const old = pair.value as Node
  if (isScalar(old) && old.value === value) return []
  return [{ start: old.range![0], end: old.range![1], insert: rendered }]
}

function editLabels(t: TextTools, map: YAMLMap, labels: string[]): Splice[] {
  const pair = pairOf(map, 'labels')
  if (!pair)
    return [
      insertPair(
        t,
        map,
        `labels: ${flowList(
          labels.map((l) => renderScalar(l, 'PLAIN')),
          false,
        )}`,
      ),
    ]
  const value = pair.value as Node
  if (isScalar(value)) {
    // `labels: macos`: kept a scalar for one label, else a flow list in its place.
    if (sameLabels([String(value.value)], labels)) return []
    const style = styleOf(value)
    const rendered =
      labels.length === 1
        ? renderScalar(labels[0]!, style)
        : flowList(
            labels.map((l) => renderScalar(l, style)),
            false,
          )
    return [{ start: value.range![0], end: value.range![1], insert: rendered }]
  }
  const seq = value as Node & { items: Scalar[]; flow?: boolean }
  const old = seq.items.map((item) => ({
    label: String(item.value),
    source: t.text.slice(item.range![0], item.range![1]),
    item,
  }))
  if (
    sameLabels(
      old.map((o) => o.label),
      labels,
    )
  )
    return []
  const style =
    old.length && old.every((o) => styleOf(o.item) === styleOf(old[0]!.item))
      ? styleOf(old[0]!.item)
      : 'PLAIN'
  // Labels kept are written as they were (their case, their quotes); new ones in the list's style.
  const used = new Set<number>()
  const matched = labels.map((l) => {
    const i = old.findIndex((o, j) => !used.has(j) && o.label.toLowerCase() === l.toLowerCase())
    if (i >= 0) used.add(i)
    return i
  })
  const render = (k: number) =>
    matched[k]! >= 0 ? old[matched[k]!]!.source : renderScalar(labels[k]!, style)
  if (seq.flow)
    return editFlowList(
      t,
      seq,
      labels.map((_, k) => render(k)),
    )
  return editBlockList(
    t,
    pair,
    old.map((o) => o.item),
    matched,
    labels.map((_, k) => render(k)),
  )
}

/** The same labels as far as jobs can tell (case, duplicates and `self-hosted` aside): nothing to write. */
function sameLabels(old: string[], labels: string[]): boolean {
  return isDeepStrictEqual(normalizeLabels(old), normalizeLabels(labels))
}

function flowList(items: string[], padded: boolean): string {
  if (!items.length) return '[]'
  return padded ? `[ ${items.join(', ')} ]` : `[${items.join(', ')}]`
}

/** `[a, b]` is written again on one line, in its spacing; a flow list with comments inside is not. */
function editFlowList(t: TextTools, seq: Node & { items: Scalar[] }, items: string[]): Splice[] {
  const [start, end] = [seq.range![0], seq.range![1]]
  let outside = t.text.slice(start, end)
  for (const item of [...seq.items].reverse())
    outside = outside.slice(0, item.range![0] - start) + outside.slice(item.range![1] - start)
  if (outside.includes('#')) {
    throw new FarmEditError(
      'invalid-edit',
      'these labels are a flow list ([…]) with comments inside, which cannot be rewritten without ' +
        'losing them; nothing was written. Write the list as a block list (one "- label" a line) or edit it by hand',
    )
  }
  const padded = /^\[[ \t]/.test(t.text.slice(start, end)) && seq.items.length > 0
  return [{ start, end, insert: flowList(items, padded) }]
}

/**
 * A block list (one `- label` a line). Kept labels keep their lines, inline comments included;
 * removed ones lose theirs; new ones get a line of their own, before the next kept label when
 * the kept ones stay in order, else each position takes the new label in turn. Comment lines
 * between items stay where they are.
 */
function editBlockList(
  t: TextTools,
  pair: Pair<Node, Node | null>,
  items: Scalar[],
  matched: number[],
  rendered: string[],
): Splice[] {
  const lines = items.map((item) => ({
    start: t.lineStart(item.range![0]),
    end: t.lineEndAfter(t.lastChar(item.range![0], item.range![1])),
    dash: t.text.slice(t.lineStart(item.range![0]), item.range![0]),
  }))
  const indent = lines[0]!.dash.replace(/-.*$/, '')
  const line = (label: string) => `${indent}- ${label}${t.newline}`
  const last = lines[lines.length - 1]!
  const append = (labels: string[]): Splice => ({
    start: last.end,
    end: last.end,
    insert: t.endsWithNewline(last.end)
      ? labels.map(line).join('')
      : labels.map((l) => t.newline + line(l).slice(0, -t.newline.length)).join(''),
  })
  const drop = (i: number): Splice => ({ start: lines[i]!.start, end: lines[i]!.end, insert: '' })

  if (rendered.length === 0) {
    // No labels left: `labels: []`, comment lines kept.
    const colon = t.text.indexOf(':', pair.key!.range![1])
    return [{ start: colon + 1, end: colon + 1, insert: ' []' }, ...lines.map((_, i) => drop(i))]
  }
  const splices: Splice[] = []
  const kept = matched.filter((i) => i >= 0)
  if (kept.every((v, k) => k === 0 || v > kept[k - 1]!)) {
    lines.forEach((_, i) => {
      if (!kept.includes(i)) splices.push(drop(i))
    })
    let pending: string[] = []
    matched.forEach((i, k) => {
      if (i < 0) pending.push(rendered[k]!)
      else if (pending.length) {
        splices.push({ start: lines[i]!.start, end: lines[i]!.start, insert: pending.map(line).join('') })
        pending = []
      }
    })
    if (pending.length) splices.push(append(pending))
    return splices
  }
  // Reordered: position k takes the k-th label, extra positions go, extra labels are appended.
  items.forEach((item, k) => {
    if (k >= rendered.length) splices.push(drop(k))
    else if (matched[k] !== k)
      splices.push({ start: item.range![0], end: item.range![1], insert: rendered[k]! })
  })
  if (rendered.length > items.length) splices.push(append(rendered.slice(items.length)))
  return splices
}

/** Adds `key: value` as the node's last key: a line of its own, or `, key: value` in `{ … }`. */
function insertPair(t: TextTools, map: YAMLMap, entry: string): Splice {
  const pairs = map.items as Pair<Node, Node | null>[]
  const last = pairs[pairs.length - 1]!
  const lastEnd = last.value ? last.value.range![1] : last.key!.range![1]
  if (map.flow) {
    const end = t.lastChar(last.key!.range![0], lastEnd) + 1
    return { start: end, end, insert: `, ${entry}` }
  }
  const first = pairs[0]!.key!.range![0]
  const indent = ' '.repeat(first - t.lineStart(first))
  const at = t.lineEndAfter(t.lastChar(last.key!.range![0], lastEnd))
  const insert = t.endsWithNewline(at) ? `${indent}${entry}${t.newline}` : `${t.newline}${indent}${entry}`
  return { start: at, end: at, insert }
}

/** Removes `key: value` from the node: its lines, or `, key: value` in `{ … }`. */
function deletePair(t: TextTools, map: YAMLMap, key: string): Splice[] {
  const pairs = map.items as Pair<Node, Node | null>[]
  const i = pairs.findIndex((p) => isScalar(p.key) && String(p.key.value) === key)
  if (i < 0) return []
  const pair = pairs[i]!
  const keyStart = pair.key!.range![0]
  const valueEnd = t.lastChar(keyStart, pair.value ? pair.value.range![1] : pair.key!.range![1]) + 1
  const next = pairs[i + 1]
  if (map.flow) {
    if (i > 0) {
      const prev = pairs[i - 1]!
      const prevEnd =
        t.lastChar(prev.key!.range![0], prev.value ? prev.value.range![1] : prev.key!.range![1]) + 1
      return [{ start: prevEnd, end: valueEnd, insert: '' }]
    }
    return [{ start: keyStart, end: next ? next.key!.range![0] : valueEnd, insert: '' }]
  }
  const lineStart = t.lineStart(keyStart)
  if (/\S/.test(t.text.slice(lineStart, keyStart)) && next) {
    // `- defaultImage: x` opens the node: the next key moves up onto the dash line.
    return [{ start: keyStart, end: next.key!.range![0], insert: '' }]
  }
  return [{ start: lineStart, end: t.lineEndAfter(valueEnd - 1), insert: '' }]
}

/** Applies the splices from the end; insertions at the same place come out in the order given. */
function applySplices(text: string, splices: Splice[]): string {
  const sorted = splices
    .map((s, i) => ({ ...s, i }))
    .sort((a, b) => b.start - a.start || b.end - a.end || b.i - a.i)
  let out = text
  for (const s of sorted) out = out.slice(0, s.start) + s.insert + out.slice(s.end)
  return out
}

/** Line arithmetic on the original text, in its own line endings. */
class TextTools {
  readonly newline: string
  constructor(readonly text: string) {
    this.newline = text.includes('\r\n') ? '\r\n' : '\n'
  }

  lineStart(pos: number): number {
    return this.text.lastIndexOf('\n', pos - 1) + 1
  }

  /** The offset just after the line holding `pos` (after its newline, or the end of the text). */
  lineEndAfter(pos: number): number {
    const nl = this.text.indexOf('\n', pos)
    return nl < 0 ? this.text.length : nl + 1
  }

  /** The last non-blank character in [from, to), as an offset. */
  lastChar(from: number, to: number): number {
    let p = to
    while (p > from && /\s/.test(this.text[p - 1]!)) p--
    return p - 1
  }

  endsWithNewline(lineEnd: number): boolean {
    return this.text[lineEnd - 1] === '\n'
  }
}

// ---------------------------------------------------------------------------------------------
// The atomic write

/** The file system calls the write uses; tests replace some to inject failures. */
export type WriteIo = Pick<
  typeof fs,
  | 'statSync'
  | 'openSync'
  | 'writeFileSync'
  | 'fchmodSync'
  | 'fchownSync'
  | 'fsyncSync'
  | 'closeSync'
  | 'renameSync'
  | 'unlinkSync'
>

/**
 * Replaces `target` with `text` so that, whatever happens, it is either the old file or the new
 * one: the text goes to a new file in the same directory, is flushed to disk, gets the old
 * file's mode (and owner, when allowed), and is renamed over `target`. `beforeRename` may still
 * refuse. On failure the new file is removed and `target` is left as it was.
 */
export function writeFileAtomically(
  target: string,
  text: string,
  beforeRename: () => void = () => {},
  io: WriteIo = fs,
): void {
  const dir = dirname(target)
  const temp = join(dir, `.${basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
  let fd: number | null = null
  let created = false
  try {
    const st = io.statSync(target)
    fd = io.openSync(temp, 'wx', st.mode & 0o777)
    created = true
    io.writeFileSync(fd, text, 'utf8')
    io.fchmodSync(fd, st.mode & 0o7777)
    try {
      io.fchownSync(fd, st.uid, st.gid)
    } catch {
      // Only root may give a file away; the new file is then the writer's, as an editor's would be.
    }
    io.fsyncSync(fd)
    io.closeSync(fd)
    fd = null
    beforeRename()
    io.renameSync(temp, target)
    created = false
  } catch (e) {
    if (fd !== null) {
      try {
        io.closeSync(fd)
      } catch {
        // already failing; the first error is the one to report
      }
    }
    if (created) {
      try {
        io.unlinkSync(temp)
      } catch {
        // nothing more to do: a stray temp file next to the farm file, never the farm file
      }
    }
    if (e instanceof FarmEditError) throw e
    throw writeFailed(target, dir, e as NodeJS.ErrnoException)
  }
  syncDirectory(dir)
}

/** Makes the rename itself durable; not every platform can open a directory, and it is not needed for correctness. */
function syncDirectory(dir: string): void {
  let fd: number | null = null
  try {
    fd = fs.openSync(dir, 'r')
    fs.fsyncSync(fd)
  } catch {
    // best effort
  } finally {
    if (fd !== null) fs.closeSync(fd)
  }
}

function writeFailed(target: string, dir: string, e: NodeJS.ErrnoException): FarmEditError {
  const code = e.code ?? ''
  const what =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk (or your quota) is full; free some space and try again'
      : code === 'EROFS'
        ? 'it is on a read-only file system; edit it where it can be written'
        : code === 'EACCES' || code === 'EPERM'
          ? `the file is replaced by writing a new file next to it and renaming it over the old one, so ${dir} must be writable; make it writable or edit the file by hand`
          : 'try again, or edit the file by hand'
  return new FarmEditError(
    'write-failed',
    `cannot write the farm file ${target} (${e.message}); it was left as it was: ${what}`,
  )
}
