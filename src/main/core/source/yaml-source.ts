/**
 * Reading YAML files while keeping positions, so every complaint can say file:line:col.
 * Both the workflow and the farm file go through here.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Node,
  type Pair,
  type YAMLMap,
} from 'yaml'
import { readFileSync } from 'node:fs'
import { InvalidSourceError, type SourceProblem } from './source-error'

export class YamlSource {
  private readonly lines = new LineCounter()
  readonly problems: SourceProblem[] = []
  readonly root: Node | null

  constructor(
    readonly file: string,
    text: string,
  ) {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true })
    for (const e of doc.errors) {
      const at = this.lines.linePos(e.pos[0])
      this.problems.push({ file, line: at.line, col: at.col, path: '', message: firstLine(e.message) })
    }
    this.root = doc.errors.length ? null : (doc.contents as Node | null)
  }

  /** Records a problem at `node` (or at the start of the file). */
  report(node: Node | null | undefined, path: string, message: string): void {
    const at = this.position(node)
    this.problems.push({ file: this.file, line: at.line, col: at.col, path, message })
  }

  /** 1-based line and column of a node. */
  position(node: Node | null | undefined): { line: number; col: number } {
    return this.lines.linePos(node?.range?.[0] ?? 0)
  }

  /** The entries of a mapping, or a reported problem when `node` is not one. */
  entries(
    node: Node | null,
    path: string,
    what: string,
  ): Array<{ key: string; keyNode: Node; value: Node | null }> | null {
    if (!isMap(node)) {
      this.report(node, path, `expected ${what} (a mapping of keys to values), found ${describe(node)}`)
      return null
    }
    return (node as YAMLMap).items.map((pair: Pair) => {
      const keyNode = pair.key as Node
      const key = isScalar(keyNode) ? String(keyNode.value) : ''
      return { key, keyNode, value: (pair.value as Node | null) ?? null }
    })
  }

  /** A scalar as a string (numbers and booleans are accepted and stringified, as GitHub does). */
  string(node: Node | null, path: string): string | null {
    if (isScalar(node) && node.value !== null && typeof node.value !== 'object') return String(node.value)
    this.report(node, path, `expected a string, found ${describe(node)}`)
    return null
  }

  /** A string or a list of strings, as `runs-on` and `needs` allow. */
  stringList(node: Node | null, path: string): string[] | null {
    if (isSeq(node)) {
      const out: string[] = []
      node.items.forEach((item, i) => {
        const s = this.string(item as Node, `${path}[${i}]`)
        if (s !== null) out.push(s)
      })
      return out
    }
    const s = this.string(node, path)
    return s === null ? null : [s]
  }

  /** A mapping of names to string values (`env:`). */
  stringMap(node: Node | null, path: string): Record<string, string> {
    const out: Record<string, string> = {}
    for (const { key, value } of this.entries(node, path, 'a mapping of variable names to values') ?? []) {
      const s = this.string(value, `${path}.${key}`)
      if (s !== null) out[key] = s
    }
    return out
  }

  integer(node: Node | null, path: string, min: number): number | null {
    if (
      isScalar(node) &&
      typeof node.value === 'number' &&
      Number.isInteger(node.value) &&
      node.value >= min
    ) {
      return node.value
    }
    this.report(node, path, `expected a whole number of at least ${min}, found ${describe(node)}`)
    return null
  }
}

export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing'
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isAlias(node))
    return `an alias (*${node.source}); YAML anchors and aliases are not supported, write the value out`
  if (isScalar(node))
    return node.value === null ? 'an empty value' : `${typeof node.value} ${JSON.stringify(node.value)}`
  return 'an unexpected value'
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

/** The closest candidate, if it is close enough to be a plausible typo. */
export function suggest(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  // Short words get one edit: with two, `fish` would suggest `bash`.
  const limit = word.length <= 4 ? 1 : Math.max(2, Math.floor(word.length / 3))
  return best !== null && bestDistance <= limit ? best : null
}

/** Reports keys not in `allowed`, with a suggestion when one is close. */
export function checkKeys(
  src: YamlSource,
  items: Array<{ key: string; keyNode: Node }>,
  allowed: readonly string[],
  path: string,
  unsupported: Readonly<Record<string, string>> = {},
): void {
  for (const { key, keyNode } of items) {
    if (allowed.includes(key)) continue
    const where = path ? `${path}.${key}` : key
    const why = unsupported[key]
    if (why) {
      src.report(keyNode, where, why)
      continue
    }
    const guess = suggest(key, allowed)
    src.report(
      keyNode,
      where,
      `unknown key "${key}"` +
        (guess ? `; did you mean "${guess}"?` : `; expected one of: ${allowed.join(', ')}`),
    )
  }
}

/**
 * Reads a YAML file of `kind` and turns it into a value with `read`, which reports problems on
 * the source. Throws InvalidSourceError with every problem, including an unreadable file.
 */
export function loadYamlFile<T>(
  kind: 'workflow' | 'farm',
  file: string,
  read: (src: YamlSource) => T | null,
): T {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    const what = kind === 'workflow' ? 'the workflow' : 'the farm file'
    throw new InvalidSourceError(kind, [
      { file, line: 1, col: 1, path: '', message: `cannot read ${what}: ${(e as Error).message}` },
    ])
  }
  return parseYaml(kind, file, text, read)
}

/** As loadYamlFile, from text. */
export function parseYaml<T>(
  kind: 'workflow' | 'farm',
  file: string,
  text: string,
  read: (src: YamlSource) => T | null,
): T {
  const src = new YamlSource(file, text)
  const value = src.root === null && src.problems.length ? null : read(src)
  if (src.problems.length || value === null) throw new InvalidSourceError(kind, src.problems)
  return value
}
