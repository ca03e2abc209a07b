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
