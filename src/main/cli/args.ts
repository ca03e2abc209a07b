/** Command-line parsing shared by all commands (node:util parseArgs: no extra dependency). */
import { parseArgs } from 'node:util'
import { defaultDataDir } from '../core/data-dir'
import { suggest } from '../core/source/yaml-source'
import { isPriority, PRIORITIES, type Priority } from '../core/scheduler/priority'

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
  /** `node <name> copy-image --from <node|local>` */
  from: string | undefined
  /** `nodes --runs-on a,b`: which nodes could take a job with these labels */
  runsOn: string[] | undefined
  dataDir: string
  json: boolean
  limit: number
  port: number
  host: string
  /** `--input K=V`, `--secret K=V` / `--secret-env K`, `--var K=V` */
  inputs: Record<string, string>
  secrets: Record<string, string>
  vars: Record<string, string>
  event: string | undefined
  eventPath: string | undefined
  /** `--platform LABEL=IMAGE` */
  platforms: Record<string, string>
  /** `--job ID`: run this job and the jobs it needs. */
  job: string | undefined
  /** `--yes`: confirm without asking (`node <name> trust`). */
  yes: boolean
  /** `--accept-new-host-keys`: record the key of a host no known_hosts knows yet (trust on first use). */
  acceptNewHostKeys: boolean
  /** `node <name> drain|cordon --reason TEXT` */
  reason: string | undefined
  /** `nodes --watch`: keep probing, print every state change, record health history. */
  watch: boolean
  /** `run --priority CLASS`: the class its jobs are served in. */
  priority: Priority | undefined
  /** `rerun --failed`: only the failed jobs and what needs them. */
  failed: boolean
  /** `logs --follow`: print what follows until the run ends. */
  follow: boolean
  /** `serve --on-quit`: what Ctrl-C does with running jobs (ask: at a terminal; cancel without one). */
  onQuit: QuitChoice | 'ask'
}

/** What stopping a console does with its running jobs: cancel them, or leave them for the next console to take over. */
export type QuitChoice = 'leave' | 'cancel'

export class UsageError extends Error {
  override name = 'UsageError'
}

/** `--runs-on "gpu, linux"` -> ['gpu', 'linux']; an option given but empty is a mistake, not "any node". */
function labelList(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined
  const labels = v
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean)
  if (!labels.length) throw new UsageError('--runs-on needs at least one label, e.g. --runs-on linux,gpu')
  return labels
}

export function parseCli(argv: string[]): ParsedArgs {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        farm: { type: 'string' },
        from: { type: 'string' },
        'runs-on': { type: 'string' },
        'data-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        limit: { type: 'string' },
        port: { type: 'string' },
        input: { type: 'string', multiple: true },
        secret: { type: 'string', multiple: true },
        'secret-env': { type: 'string', multiple: true },
        var: { type: 'string', multiple: true },
        event: { type: 'string' },
        platform: { type: 'string', multiple: true },
        job: { type: 'string' },
        'event-path': { type: 'string' },
        yes: { type: 'boolean', default: false },
        'accept-new-host-keys': { type: 'boolean', default: false },
        reason: { type: 'string' },
        watch: { type: 'boolean', default: false },
        priority: { type: 'string' },
        failed: { type: 'boolean', default: false },
        follow: { type: 'boolean', short: 'f', default: false },
        'on-quit': { type: 'string' },
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
  // An unknown command is a usage error whatever follows it (`yardmaster frob --help` too).
  if (!(COMMANDS as readonly string[]).includes(first)) {
    const guess = suggest(first, COMMANDS)
    throw new UsageError(`unknown command "${first}"${guess ? `; did you mean "${guess}"?` : ''}`)
  }
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
    from: values.from,
    runsOn: labelList(values['runs-on']),
    dataDir: values['data-dir'] ?? defaultDataDir(),
    json: values.json ?? false,
    limit: int('limit', values.limit, 20, 1, 1000),
    port: int('port', values.port, 7420, 0, 65535),
    host: '127.0.0.1',
    inputs: pairs('input', values.input),
    secrets: { ...pairs('secret', values.secret), ...fromEnv(values['secret-env']) },
    vars: pairs('var', values.var),
    event: values.event,
    eventPath: values['event-path'],
    platforms: pairs('platform', values.platform),
    job: values.job,
    yes: values.yes ?? false,
    acceptNewHostKeys: values['accept-new-host-keys'] ?? false,
    reason: values.reason,
    watch: values.watch ?? false,
    priority: priorityOf(values.priority),
    failed: values.failed ?? false,
    follow: values.follow ?? false,
    onQuit: onQuitOf(values['on-quit']),
  }
}

function onQuitOf(v: string | undefined): QuitChoice | 'ask' {
  if (v === undefined) return 'ask'
  if (v !== 'leave' && v !== 'cancel' && v !== 'ask')
    throw new UsageError(`--on-quit must be leave, cancel or ask, not "${v}"`)
  return v
}

function priorityOf(v: string | undefined): Priority | undefined {
  if (v === undefined) return undefined
  if (!isPriority(v)) throw new UsageError(`--priority must be one of ${PRIORITIES.join(', ')}, not "${v}"`)
  return v
}

/** The commands `yardmaster` knows (main dispatches on them). */
export const COMMANDS = [
  'run',
  'validate',
  'plan',
  'history',
  'serve',
  'nodes',
  'node',
  'queue',
  'logs',
  'cancel',
  'rerun',
  'secrets',
  'help',
  'version',
] as const

/** `K=V` options into a record; the value may itself contain "=". */
function pairs(option: string, list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of list ?? []) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new UsageError(`--${option} takes NAME=VALUE, not "${item}"`)
    out[item.slice(0, eq)] = item.slice(eq + 1)
  }
  return out
}

/** `--secret-env NAME`: the secret's value comes from this process's environment, so it never appears in a command line. */
function fromEnv(names: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of names ?? []) {
    const value = process.env[name]
    if (value === undefined)
      throw new UsageError(`--secret-env ${name}: no environment variable ${name} is set`)
    out[name] = value
  }
  return out
}
