/** `yardmaster serve [--port N] [--farm FILE]`: the UI in a browser, on 127.0.0.1 only. */
import { join } from 'node:path'
import { Backend } from '../api/backend'
import { openDatabase } from '../core/store/database'
import { RunStore } from '../core/store/run-store'
import { startLoopbackServer } from '../server/loopback-server'
import { EXIT, type ParsedArgs } from './args'
import { loadFarm } from './farm-option'
import type { CliIo } from './output'

export async function serveCommand(
  args: ParsedArgs,
  io: CliIo,
  signal: AbortSignal,
  ctx: { version: string; rendererDir: string },
): Promise<number> {
  const farm = await loadFarm(args.farm)
  const db = openDatabase(args.dataDir)
  const backend = new Backend({ store: new RunStore(db), farm, dataDir: args.dataDir, version: ctx.version })
  backend.watchStore()
  const server = await startLoopbackServer({ backend, rendererDir: ctx.rendererDir, port: args.port })
  io.out(`Yardmaster is serving on ${server.origin} (history: ${args.dataDir})\n`)
  io.out(`Open: ${server.url}\n`)
  io.out('The token in that URL is required; keep it private. Ctrl-C stops.\n')
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await server.close()
  backend.close()
  db.close()
  return EXIT.ok
}

export function rendererDirBesideBundle(bundleDir: string): string {
  return join(bundleDir, '..', 'renderer')
}
