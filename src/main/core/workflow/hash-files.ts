/**
 * `hashFiles(patterns...)`, as GitHub computes it: the SHA-256 of the concatenated SHA-256
 * digests of the workspace files the patterns match (`!` excludes), in path order; '' when
 * nothing matches. The expression engine is synchronous and the files are on the node, so the
 * runner finds the calls in a step first (findHashFilesCalls), computes them on the node, and
 * hands the answers to the evaluator.
 */
import { createHash } from 'node:crypto'
import { minimatch } from 'minimatch'

/** Each distinct `hashFiles('a', 'b')` call in some expression text, as its list of patterns. */
export function findHashFilesCalls(text: string): string[][] {
  const calls: string[][] = []
  const seen = new Set<string>()
  for (const m of text.matchAll(/hashFiles\(([^()]*)\)/gi)) {
    const args = [...m[1]!.matchAll(/'((?:[^']|'')*)'/g)].map((a) => a[1]!.replace(/''/g, "'"))
    const key = JSON.stringify(args)
    if (args.length && !seen.has(key)) {
      seen.add(key)
      calls.push(args)
    }
  }
  return calls
}

export function hashFilesKey(patterns: readonly string[]): string {
  return JSON.stringify(patterns)
}

/** The workspace-relative files (as `find . -type f` prints them) that the patterns select, sorted. */
export function matchFiles(files: readonly string[], patterns: readonly string[]): string[] {
  const clean = files.map((f) => f.replace(/^\.\//, '')).filter(Boolean)
  const include = patterns.filter((p) => !p.startsWith('!')).map(normalize)
  const exclude = patterns.filter((p) => p.startsWith('!')).map((p) => normalize(p.slice(1)))
  return clean
    .filter(
      (f) =>
        include.some((p) => minimatch(f, p, { dot: true })) &&
        !exclude.some((p) => minimatch(f, p, { dot: true })),
    )
    .sort()
}

function normalize(pattern: string): string {
  return pattern
    .trim()
    .replace(/^\.\//, '')
    .replace(/^\$\{\{\s*github\.workspace\s*\}\}\//, '')
}

/** Combines per-file SHA-256 digests (hex) into hashFiles' answer. */
export function combineDigests(hexDigests: readonly string[]): string {
  if (!hexDigests.length) return ''
  const all = createHash('sha256')
  for (const d of hexDigests) all.update(Buffer.from(d, 'hex'))
  return all.digest('hex')
}
