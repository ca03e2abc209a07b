/**
 * The `yardmaster` command. Runs under plain Node (bin/yardmaster.cjs loads the bundle).
 * Returns the exit code rather than exiting, so tests can run it in-process.
 */
import { InvalidSourceError } from '../core/source/source-error'
import { NoReachableNodeError } from '../core/executor/prepare-run'
import pkg from '../../../package.json'
import { EXIT, parseCli, UsageError } from './args'
import { historyCommand } from './history-command'
import { validateCommand } from './validate-command'
import { planCommand } from './plan-command'
import { InvalidInputError } from '../core/executor/run-contexts'
import { SecretStoreError } from '../core/secrets/secret-store'
import { processIo, type CliIo } from './output'
import { runCommand } from './run-command'
import { rendererDirBesideBundle, serveCommand } from './serve-command'
import { nodesCommand } from './nodes-command'
import { NODE_USAGE, nodeCommand } from './node-command'
import { SECRETS_USAGE, secretsCommand } from './secrets-command'
import { cancelCommand, logsCommand, queueCommand, rerunCommand } from './queue-commands'

export const HELP = `Yardmaster ${pkg.version}: run GitHub Actions style pipelines on your own farm.

Usage:
  yardmaster run <workflow.yml> [--farm farm.yml]   run a workflow, streaming each job's output
      [--input K=V]... [--secret K=V | --secret-env K]... [--var K=V]...
      [--event NAME] [--event-path FILE] [--job ID] [--platform LABEL=IMAGE]... [--json]
      [--priority hotfix|high|normal|low]           when a console (serve, the app) runs on the
                                                    data dir, the run is submitted to it and followed
  yardmaster queue [--json]                         what waits: jobs waiting for a slot (with why),
                                                    runs waiting to start
  yardmaster logs <run> [--job ID] [--follow]       a run's stored log; --follow prints what follows
  yardmaster cancel <run>[/<job>]                   stop a run, or one job of it
  yardmaster rerun <run> [--failed | --job ID] [--json]
                                                    run it again: all jobs, the failed ones, or one
                                                    (with what needs them; the others' results kept)
  yardmaster validate <workflow.yml>...             check workflows; problems as file:line:col
  yardmaster plan <workflow.yml> [--farm F] [--json] the job graph: levels, critical path, matrix
                                                    instances, and which nodes could take each job
  yardmaster history [--limit N] [--json]           list past runs
  yardmaster serve [--port 7420] [--farm farm.yml]  serve the UI on 127.0.0.1 (token in the URL); watches
      [--on-quit leave|cancel|ask]                  the nodes' health meanwhile (history in the data dir);
                                                    Ctrl-C with jobs running asks whether to leave them
                                                    (the next console takes them over) or cancel them
  yardmaster nodes [--farm farm.yml] [--json] [--runs-on L1,L2]
                                                    probe every node at once: reachable?, OS/arch,
                                                    cores, memory, disk free, labels; with --runs-on,
                                                    which nodes could take such a job and why not
  yardmaster nodes --watch [--farm F]               probe every node every 5 s, print each state change
                                                    (online, degraded, unreachable, offline; drained...),
                                                    keep the health history in the data dir
${NODE_USAGE}${SECRETS_USAGE}  yardmaster help | --version

Options:
  --farm FILE      the farm file (nodes to run on). Default: this machine alone, through the
                   local Docker engine if one answers, else a local shell.
  --data-dir DIR   where history is kept. Default: the per-user app data folder
                   (${'$'}YARDMASTER_DATA_DIR overrides it).
  --from NODE      copy-image: the node that has the image, or \`local\` for this machine's
                   Docker engine (unless the farm has a node named local).
  --accept-new-host-keys
                   run, serve, nodes, node: a host that no known_hosts knows yet is accepted and its
                   key recorded in the data dir's known_hosts (trust on first use). A changed
                   key is refused all the same.
  --yes            node <name> trust: record the key without asking (check its fingerprint first).

Exit codes: 0 the run succeeded; 1 a job failed or the run was cancelled;
2 the run could not start (invalid workflow or farm file, no node for a job, node unreachable).
nodes: 0 every node answered; 1 a node is unreachable (the others are still shown).
node: 0 done; 1 the operation failed (node unreachable, engine error, image not on the source).
Both: 2 invalid farm file, unknown node or operation, or bad usage.
`

export async function main(argv: string[], io: CliIo = processIo(), signal?: AbortSignal): Promise<number> {
  const abort = new AbortController()
  const detach = signal ? forward(signal, abort) : trapSignals(abort, io, argv[0] === 'serve')
  try {
    const args = parseCli(argv)
    switch (args.command) {
      case 'run':
        return await runCommand(args, io, abort.signal)
      case 'validate':
        return await validateCommand(args, io)
      case 'plan':
        return await planCommand(args, io)
      case 'history':
        return historyCommand(args, io)
      case 'serve':
        return await serveCommand(args, io, abort.signal, {
          version: pkg.version,
          rendererDir: rendererDirBesideBundle(__dirname),
        })
      case 'nodes':
        return await nodesCommand(args, io, abort.signal)
      case 'node':
        return await nodeCommand(args, io, abort.signal)
      case 'queue':
        return queueCommand(args, io)
      case 'logs':
        return await logsCommand(args, io, abort.signal)
      case 'cancel':
        return cancelCommand(args, io)
      case 'rerun':
        return await rerunCommand(args, io, abort.signal)
      case 'secrets':
        return await secretsCommand(args, io)
      case 'version':
        io.out(`${pkg.version}\n`)
        return EXIT.ok
      case 'help':
        io.out(HELP)
        return EXIT.ok
      default:
        throw new UsageError(`unknown command "${args.command}"`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`yardmaster: ${e.message}\n\n${HELP}`)
      return EXIT.invalid
    }
    if (
      e instanceof InvalidSourceError ||
      e instanceof NoReachableNodeError ||
      e instanceof InvalidInputError ||
      e instanceof SecretStoreError
    ) {
      io.err(`${e.message}\n`)
      return EXIT.invalid
    }
    io.err(`yardmaster: ${(e as Error).message}\n`)
    return EXIT.invalid
  } finally {
    detach()
  }
}

/**
 * First Ctrl-C cancels gracefully (containers removed, run recorded as cancelled); a second one
 * exits. For `serve`, the first stops the console (asking what becomes of running jobs, --on-quit);
 * a second exits at once, which leaves its jobs for the next console to take over.
 */
function trapSignals(abort: AbortController, io: CliIo, serving: boolean): () => void {
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130)
    io.err(
      serving
        ? '\nstopping (press Ctrl-C again to quit at once, leaving running jobs to the next console)...\n'
        : '\ncancelling (press Ctrl-C again to quit at once)...\n',
    )
    abort.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

function forward(from: AbortSignal, to: AbortController): () => void {
  const f = () => to.abort()
  if (from.aborted) to.abort()
  from.addEventListener('abort', f, { once: true })
  return () => from.removeEventListener('abort', f)
}
