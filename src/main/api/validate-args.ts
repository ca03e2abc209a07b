/** Arguments arrive from outside (a browser, the renderer): check them before use. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError'
}

export function requireInt(args: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = optionalInt(args, key, min, max)
  if (v === undefined) throw new InvalidArgumentError(`"${key}" is required`)
  return v
}

export function optionalInt(args: unknown, key: string, min: number, max: number): number | undefined {
  if (typeof args !== 'object' || args === null) throw new InvalidArgumentError('arguments must be an object')
  const v = (args as Record<string, unknown>)[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`"${key}" must be a whole number from ${min} to ${max}`)
  }
  return v
}

function field(args: unknown, key: string): unknown {
  if (typeof args !== 'object' || args === null || Array.isArray(args))
    throw new InvalidArgumentError('arguments must be an object')
  return (args as Record<string, unknown>)[key]
}

export function optionalString(args: unknown, key: string, maxLength = 1000): string | undefined {
  const v = field(args, key)
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new InvalidArgumentError(`"${key}" must be a string`)
  if (v.length > maxLength) throw new InvalidArgumentError(`"${key}" must be at most ${maxLength} characters`)
  return v
}

/** A string with something in it (not only blanks). */
export function requireString(args: unknown, key: string, maxLength = 1000): string {
  const v = optionalString(args, key, maxLength)
  if (v === undefined) throw new InvalidArgumentError(`"${key}" is required`)
  if (!v.trim()) throw new InvalidArgumentError(`"${key}" must not be empty`)
  return v
}

export function requireOneOf<T extends string>(args: unknown, key: string, allowed: readonly T[]): T {
  const v = field(args, key)
  if (v === undefined || v === null) throw new InvalidArgumentError(`"${key}" is required`)
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw new InvalidArgumentError(`"${key}" must be one of ${allowed.join(', ')}`)
  return v as T
}

/** An object argument whose keys must all be among `known` (a typo is an error, not ignored). */
export function requireObject(args: unknown, key: string, known: readonly string[]): Record<string, unknown> {
  const v = field(args, key)
  if (v === undefined || v === null) throw new InvalidArgumentError(`"${key}" is required`)
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError(`"${key}" must be an object`)
  const unknown = Object.keys(v).filter((k) => !known.includes(k))
  if (unknown.length)
    throw new InvalidArgumentError(
      `"${key}" has unknown field${unknown.length === 1 ? '' : 's'} ${unknown.map((k) => `"${k}"`).join(', ')}; ` +
        `it takes ${known.map((k) => `"${k}"`).join(', ')}`,
    )
  return v as Record<string, unknown>
}
