/**
 * `yardmaster serve [--port N] [--farm FILE] [--accept-new-host-keys] [--on-quit leave|cancel|ask]`:
 * the UI in a browser, on 127.0.0.1 only, with the health monitor probing the farm's nodes while
 * it serves. Ctrl-C with jobs running asks (at a terminal) whether to cancel them or leave them
 * running for the next console on the data dir to take over.
 */
import { join } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { createAppBackend } from '../api/app-backend'
import { startLoopbackServer } from '../server/loopback-server'
import { EXIT, type ParsedArgs, type QuitChoice } from './args'
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
  let leaving = false
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
    const running = app.orchestrator.runningJobs()
    const choice = running ? await quitChoice(args.onQuit, running, io) : 'cancel'
    await server.close()
    if (choice === 'leave') {
      // Nothing is stopped or closed: this process ends as if it had died, and the next console
      // on the data dir takes the jobs over (their steps go on in their containers meanwhile).
      leaving = true
      io.err(
        `left ${jobs(running)} running on their nodes: the next console on ${args.dataDir} takes them over ` +
          '(yardmaster serve, or the app)\n',
      )
      return EXIT.ok
    }
    if (running) io.err(`cancelling ${jobs(running)}...\n`)
  } finally {
    // The monitor stops and the nodes' connections are closed, whatever happened (unless left).
    if (!leaving) await app.close()
  }
  return EXIT.ok
}

const jobs = (n: number) => `${n} job${n === 1 ? '' : 's'}`

/** --on-quit, or the answer at a terminal (cancel without one). A second Ctrl-C leaves them. */
async function quitChoice(given: QuitChoice | 'ask', running: number, io: CliIo): Promise<QuitChoice> {
  if (given !== 'ask') return given
  if (!process.stdin.isTTY) return 'cancel'
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const asked = rl.question(
      `${jobs(running)} running. Leave them running (the next console takes them over) or cancel them? [l/c] `,
    )
    const again = new Promise<string>((resolve) => rl.once('SIGINT', () => resolve('l')))
    const answer = (await Promise.race([asked, again])).trim().toLowerCase()
    io.err('\n')
    return answer.startsWith('l') ? 'leave' : 'cancel'
  } finally {
    rl.close()
  }
}

export function rendererDirBesideBundle(bundleDir: string): string {
  return join(bundleDir, '..', 'renderer')
}
