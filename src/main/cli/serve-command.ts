/**
 * `yardmaster serve [--port N] [--farm FILE] [--accept-new-host-keys]`: the UI in a browser, on
 * 127.0.0.1 only, with the health monitor probing the farm's nodes while it serves.
 */
import { join } from 'node:path'
import { createAppBackend } from '../api/app-backend'
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
  const app = createAppBackend({
    dataDir: args.dataDir,
    farm,
    version: ctx.version,
    acceptNewHostKeys: args.acceptNewHostKeys,
  })
  try {
    const server = await startLoopbackServer({
      backend: app.backend,
      rendererDir: ctx.rendererDir,
      port: args.port,
    })
    io.out(`Yardmaster is serving on ${server.origin} (history: ${args.dataDir})\n`)
    io.out(`Open: ${server.url}\n`)
    io.out('The token in that URL is required; keep it private. Ctrl-C stops.\n')
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await server.close()
  } finally {
    // The monitor stops and the nodes' connections are closed, whatever happened.
    await app.close()
  }
  return EXIT.ok
}

export function rendererDirBesideBundle(bundleDir: string): string {
  return join(bundleDir, '..', 'renderer')
}
