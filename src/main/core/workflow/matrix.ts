/**
 * `strategy.matrix` expansion with GitHub's rules: the product of the axes in their order,
 * minus `exclude` (partial matches), then `include`: an entry is merged into every combination
 * whose original values it does not contradict (added values may be overwritten by later
 * entries), or becomes a combination of its own when it fits none. Pure.
 */
import type { Json } from './expressions'

export type MatrixCombination = Record<string, Json>

export class MatrixError extends Error {
  override name = 'MatrixError'
}

/** Upper bound, as on GitHub: a matrix may produce at most 256 jobs. */
export const MAX_MATRIX_JOBS = 256

export function expandMatrix(matrix: Json): MatrixCombination[] {
  if (matrix === null || typeof matrix !== 'object' || Array.isArray(matrix)) {
    throw new MatrixError('strategy.matrix must be a mapping of axes (or an expression that gives one)')
  }
  const axes = Object.keys(matrix).filter((k) => k !== 'include' && k !== 'exclude')
  for (const axis of axes) {
    const values = matrix[axis]
    if (!Array.isArray(values)) throw new MatrixError(`matrix axis "${axis}" must be a list of values`)
    if (values.length === 0) throw new MatrixError(`matrix axis "${axis}" has no values`)
  }
  const include = listOfMappings(matrix.include, 'include')
  const exclude = listOfMappings(matrix.exclude, 'exclude')

  let combos: MatrixCombination[] = axes.length ? [{}] : []
  for (const axis of axes) {
    const next: MatrixCombination[] = []
    for (const c of combos) for (const v of matrix[axis] as Json[]) next.push({ ...c, [axis]: v })
    combos = next
  }
  combos = combos.filter(
    (c) => !exclude.some((e) => Object.entries(e).every(([k, v]) => k in c && deepEqual(c[k], v))),
  )

  const original = new Set(axes)
  const productCount = combos.length
  for (const entry of include) {
    let merged = false
    for (let i = 0; i < productCount; i++) {
      const c = combos[i]!
      const fits = Object.entries(entry).every(([k, v]) => !original.has(k) || deepEqual(c[k], v))
      if (fits) {
        Object.assign(c, entry)
        merged = true
      }
    }
    if (!merged) combos.push({ ...entry })
  }
  if (combos.length > MAX_MATRIX_JOBS) {
    throw new MatrixError(`the matrix makes ${combos.length} jobs; at most ${MAX_MATRIX_JOBS} are allowed`)
  }
  return combos
}

/** GitHub's name for a matrix job: `build (linux, 20)`, values in axis order. */
export function instanceName(base: string, combo: MatrixCombination): string {
  const values = Object.values(combo).map((v) =>
    typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v),
  )
  return values.length ? `${base} (${values.join(', ')})` : base
}

/** The workflow job a matrix job's name belongs to: `build (linux, 20)` -> `build`. */
export function jobKeyOf(instance: string): string {
  return instance.replace(/ \(.*\)$/, '')
}

function listOfMappings(value: Json | undefined, what: string): MatrixCombination[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new MatrixError(`matrix "${what}" must be a list of mappings`)
  return value.map((v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new MatrixError(`each matrix "${what}" entry must be a mapping`)
    return v
  })
}

export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return (
    ka.length === kb.length &&
    ka.every((k) => deepEqual((a as Record<string, Json>)[k], (b as Record<string, Json>)[k]))
  )
}
