/**
 * `yardmaster secrets list | set NAME | rm NAME`: the farm's stored secrets. A value is read
 * from standard input (typed without echo at a terminal, or piped: `yardmaster secrets set
 * DEPLOY_KEY < key.pem`), never from the command line, where `ps` would show it.
 */
import { envKeySource, SecretStore } from '../core/secrets/secret-store'
import { EXIT, UsageError, type ParsedArgs } from './args'
import type { CliIo } from './output'
import { formatTable } from './text-table'

export const SECRETS_USAGE = `  yardmaster secrets list [--json]                  the stored secrets' names (never their values)
  yardmaster secrets set NAME                       store a secret, its value read from stdin
                                                    (sealed with YARDMASTER_SECRETS_KEY; runs whose
                                                    workflow names secrets.NAME get it)
  yardmaster secrets rm NAME                        delete a stored secret
`

/** Where a value is read from: the process's stdin (tests pass their own). */
export type ValueReader = (prompt: string) => Promise<string>

export async function secretsCommand(
  args: ParsedArgs,
  io: CliIo,
  readValue: ValueReader = readStdin(io),
): Promise<number> {
  const [op, name, ...extra] = args.positionals
  const store = new SecretStore(args.dataDir, envKeySource())
  if (extra.length) throw new UsageError(`secrets ${op}: one name at a time`)
  switch (op) {
    case undefined:
    case 'list': {
      const list = store.list()
      if (args.json) io.out(JSON.stringify(list) + '\n')
      else if (!list.length) io.out(`no secrets stored (in ${args.dataDir})\n`)
      else
        io.out(
          formatTable(
            ['NAME', 'UPDATED'],
            list.map((s) => [s.name, new Date(s.updatedAt).toISOString().replace('T', ' ').slice(0, 19)]),
          ),
        )
      return EXIT.ok
    }
    case 'set': {
      if (!name) throw new UsageError('secrets set: which secret? usage: yardmaster secrets set NAME')
      const value = await readValue(`value of ${name}: `)
      const s = store.set(name, value)
      io.err(`stored ${s.name} (${Buffer.byteLength(value)} bytes, sealed in ${args.dataDir})\n`)
      return EXIT.ok
    }
    case 'rm': {
      if (!name) throw new UsageError('secrets rm: which secret? usage: yardmaster secrets rm NAME')
      if (!store.delete(name)) {
        io.err(`no secret ${name.toUpperCase()} is stored\n`)
        return EXIT.failed
      }
      io.err(`deleted ${name.toUpperCase()}\n`)
      return EXIT.ok
    }
    default:
      throw new UsageError(`secrets: unknown operation "${op}"; use list, set or rm`)
  }
}

/**
 * The value from stdin: at a terminal, typed without echo up to Enter; piped, everything, less
 * one trailing newline (what `echo` and most editors add).
 */
function readStdin(io: CliIo): ValueReader {
  return async (prompt) => {
    const stdin = process.stdin
    if (!stdin.isTTY) {
      const chunks: Buffer[] = []
      for await (const c of stdin) chunks.push(c as Buffer)
      return Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\r?\n$/, '')
    }
    io.err(prompt)
    stdin.setRawMode(true)
    stdin.resume()
    try {
      return await new Promise<string>((resolve, reject) => {
        let typed = ''
        stdin.on('data', (b: Buffer) => {
          for (const ch of b.toString('utf8')) {
            if (ch === '\r' || ch === '\n') return resolve(typed)
            if (ch === '\u0003') return reject(new Error('cancelled'))
            if (ch === '\u007f') typed = typed.slice(0, -1)
            else typed += ch
          }
        })
      })
    } finally {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.removeAllListeners('data')
      io.err('\n')
    }
  }
}
