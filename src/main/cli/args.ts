/** Command-line parsing shared by all commands (node:util parseArgs: no extra dependency). */
import { parseArgs } from 'node:util'
import { defaultDataDir } from '../core/data-dir'

/** Exit codes, documented in `yardmaster help`. */
export const EXIT = {
  ok: 0,
  /** A job failed, or the run was cancelled. */
  failed: 1,
  /** The run could not start: invalid workflow or farm file, no node for a job, node unreachable. */
  invalid: 2,
} as const

export interface ParsedArgs {
  command: string
  positionals: string[]
  farm: string | undefined
  dataDir: string
  json: boolean
  limit: number
  port: number
  host: string
}

export class UsageError extends Error {
  override name = 'UsageError'
}

export function parseCli(argv: string[]): ParsedArgs {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        farm: { type: 'string' },
        'data-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        limit: { type: 'string' },
        port: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const { values, positionals } = parsed
  // --help and --version win wherever they stand: `yardmaster run ci.yml --help` must not run anything.
  const [first = 'help', ...rest] = positionals
  const command = values.help ? 'help' : values.version ? 'version' : first
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number) => {
    if (v === undefined) return dflt
    const n = /^\d+$/.test(v) ? Number(v) : NaN
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`)
    return n
  }
  return {
    command,
    positionals: rest,
    farm: values.farm,
    dataDir: values['data-dir'] ?? defaultDataDir(),
    json: values.json ?? false,
    limit: int('limit', values.limit, 20, 1, 1000),
    port: int('port', values.port, 7420, 0, 65535),
    host: '127.0.0.1',
  }
}
