/**
 * Jobs in a fresh container on a Docker engine (over SSH or local). One container per job,
 * labelled so it can be found again; each step is its own `docker exec` process in it.
 *
 * Secrets stay out of what the engine shows: the container is created without the job's
 * environment (`docker inspect` shows a container's config to anyone with the socket), and each
 * step's script and environment ride in its `docker exec`'s own environment, which neither the
 * host's `ps` nor `docker inspect` shows; the exec's command line holds only paths, and the step
 * writes its script to a file only its user can read (step-launcher). Service containers are the
 * exception: they read their `env` when they start, so it is in their config, as on GitHub.
 */
import type Docker from 'dockerode'
import type { FarmNode } from '../farm/farm-model'
import { describeNode } from '../farm/farm-model'
import { JobSetupError } from './job-failures'
import {
  shellQuote,
  stopGracefully,
  type JobEnvironment,
  type JobSetup,
  type Leftover,
  type NodeExecutor,
  type OutputSink,
  type StepCommand,
} from './job-environment'
import { pullImage } from '../farm/image-pull'
import { allowHint, refusedHostPaths } from '../scheduler/bind-mounts'
import { execDelivery, followRecord, stepFiles } from './step-launcher'

export const WORKSPACE = '/workspace'

/** Labels on every container Yardmaster creates; prune and reattach find them by these. */
export const LABEL_MANAGED = 'io.yardmaster.managed'
export const LABEL_INSTANCE = 'io.yardmaster.instance'
export const LABEL_RUN = 'io.yardmaster.run'
export const LABEL_JOB = 'io.yardmaster.job'
export const LABEL_SERVICE = 'io.yardmaster.service'
export const LABEL_ATTEMPT = 'io.yardmaster.attempt'
/** The orchestrator (slot-claim holder) that owns the attempt. */
export const LABEL_HOLDER = 'io.yardmaster.holder'

/** An image the node does not have and cannot pull: the job's to fix (or the admin's, with copy-image). */
export class ImageUnavailableError extends JobSetupError {
  constructor(node: FarmNode, image: string, detail: string) {
    super(
      `image ${image} is not on node ${describeNode(node)} and could not be pulled (${detail}). ` +
        `Load it there (docker save ${image} | ssh <node> docker load), or use an image the node has.`,
    )
    this.name = 'ImageUnavailableError'
  }
}

// The container's main process only keeps it alive; steps run beside it with exec.
const KEEPALIVE = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done']

export class DockerExecutor implements NodeExecutor {
  constructor(
    private readonly docker: Docker,
    private readonly node: FarmNode,
    /**
     * The node's current SSH connection (null while there is none), for engines reached over
     * SSH: an exec's output ends the same way whether the step ended or the connection dropped
     * (the engine's raw stream ends with its socket), so a changed connection tells them apart.
     */
    private readonly link: (() => object | null) | null = null,
  ) {}

  async prepare(
    setup: JobSetup,
    progress: (m: string) => void,
    signal: AbortSignal,
  ): Promise<JobEnvironment> {
    const image = setup.image ?? this.node.defaultImage
    if (!image) {
      throw new JobSetupError(
        `job ${setup.jobKey} has no "container:" image and node ${this.node.name} has no defaultImage; set one of them`,
      )
    }
    // The farm decides what a workflow may mount from its nodes (bind-mounts.ts); the planner
    // already kept the job off nodes that refuse, this holds for what only the run evaluated.
    const refused = refusedHostPaths(
      [...(setup.volumes ?? []), ...(setup.services ?? []).flatMap((s) => s.volumes)],
      this.node,
    )
    if (refused.length)
      throw new JobSetupError(
        `the job's volumes would bind-mount ${refused.map((p) => `"${p}"`).join(', ')} from node ${this.node.name}, ` +
          `which its farm file does not allow: use a named volume (name:/path), or ${refused.map((p) => allowHint(p, this.node)).join('; ')}`,
      )
    await this.ensureImage(image, progress, setup.credentials ?? null)
    for (const s of setup.services ?? []) await this.ensureImage(s.image, progress, s.credentials)
    signal.throwIfAborted()
    const labels = {
      [LABEL_MANAGED]: 'true',
      [LABEL_INSTANCE]: setup.instance,
      [LABEL_RUN]: String(setup.runId),
      [LABEL_JOB]: setup.jobKey,
      ...(setup.attempt !== undefined ? { [LABEL_ATTEMPT]: String(setup.attempt) } : {}),
      ...(setup.holder ? { [LABEL_HOLDER]: setup.holder } : {}),
    }
    const container = await this.docker.createContainer({
      Image: image,
      Cmd: KEEPALIVE,
      WorkingDir: WORKSPACE,
      // No job environment here: every step's exec carries it (see the comment on top).
      Env: [`GITHUB_WORKSPACE=${WORKSPACE}`],
      Labels: labels,
      HostConfig: {
        AutoRemove: false,
        Binds: setup.volumes?.length ? setup.volumes : undefined,
        // Services share this container's network: their names resolve to localhost here.
        ExtraHosts: setup.services?.length ? setup.services.map((s) => `${s.name}:127.0.0.1`) : undefined,
        ...hostLimits(setup.resources),
      },
    })
    const services: Docker.Container[] = []
    try {
      await container.start()
      for (const s of setup.services ?? []) {
        progress(`starting service ${s.name} (${s.image})`)
        const service = await this.docker.createContainer({
          Image: s.image,
          ...(s.command ? { Cmd: ['sh', '-c', s.command] } : {}),
          ...(s.entrypoint ? { Entrypoint: [s.entrypoint] } : {}),
          Env: Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
          Labels: { ...labels, [LABEL_SERVICE]: s.name },
          HostConfig: {
            NetworkMode: `container:${container.id}`,
            Binds: s.volumes.length ? s.volumes : undefined,
          },
        })
        services.push(service)
        await service.start()
      }
    } catch (e) {
      for (const c of [...services, container]) await c.remove({ force: true }).catch(() => {})
      throw e
    }
    return new ContainerJob(this.docker, container, services, setup.graceMs ?? 0, this.link)
  }

  async adopt(l: Leftover, graceMs: number, signal: AbortSignal): Promise<JobEnvironment | null> {
    const found = await this.containersOf(l, signal)
    const job = found.find((c) => !c.Labels?.[LABEL_SERVICE])
    if (!job || job.State !== 'running' || (l.ref && job.Id !== l.ref)) return null
    const services = found.filter((c) => c.Labels?.[LABEL_SERVICE]).map((c) => this.docker.getContainer(c.Id))
    return new ContainerJob(this.docker, this.docker.getContainer(job.Id), services, graceMs, this.link)
  }

  /** What an attempt made here, by its labels. */
  private containersOf(l: Leftover, signal: AbortSignal): Promise<Docker.ContainerInfo[]> {
    const label = [
      `${LABEL_INSTANCE}=${l.instance}`,
      `${LABEL_RUN}=${l.runId}`,
      `${LABEL_JOB}=${l.jobKey}`,
      `${LABEL_ATTEMPT}=${l.attempt}`,
    ]
    return this.docker.listContainers({ all: true, filters: { label }, abortSignal: signal })
  }

  async fence(l: Leftover, signal: AbortSignal): Promise<void> {
    // By labels, not only by id: an orchestrator killed between create and record left no id.
    const found = await this.containersOf(l, signal)
    const ids = new Set(found.map((c) => c.Id))
    if (l.ref) ids.add(l.ref)
    // Services first: they live in the job container's network namespace.
    const order = [...ids].sort(
      (a, b) =>
        Number(!found.find((c) => c.Id === a)?.Labels?.[LABEL_SERVICE]) -
        Number(!found.find((c) => c.Id === b)?.Labels?.[LABEL_SERVICE]),
    )
    for (const id of order) await removeFenced(this.docker.getContainer(id), signal)
  }

  /** The image on the node: there already, or pulled. */
  private async ensureImage(
    image: string,
    progress: (m: string) => void,
    credentials: { username: string; password: string } | null,
  ): Promise<void> {
    try {
      await this.docker.getImage(image).inspect()
      return
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e
    }
    progress(`image ${image} is not on ${this.node.name}; pulling it`)
    try {
      await pullImage(this.docker, image, { credentials })
    } catch (e) {
      throw new ImageUnavailableError(this.node, image, (e as Error).message.split('\n')[0] ?? String(e))
    }
  }
}

/**
 * Removes a fenced container. Gone already is fenced; a removal already in progress (another
 * orchestrator fencing the same node) is waited for, so the node takes work only once it is gone.
 */
async function removeFenced(container: Docker.Container, signal: AbortSignal): Promise<void> {
  try {
    await container.remove({ force: true, abortSignal: signal })
    return
  } catch (e) {
    const code = (e as { statusCode?: number }).statusCode
    if (code === 404) return
    if (code !== 409) throw e
  }
  for (;;) {
    try {
      await container.inspect({ abortSignal: signal })
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return
      throw e
    }
    await new Promise((r) => setTimeout(r, 200))
    signal.throwIfAborted()
  }
}

/**
 * An exec's multiplexed output, to the sink stream by stream; resolves when it ends: 'end' when
 * the engine ended it, 'cut' when it closed without an end (the connection to the node dropped).
 */
function demux(
  modem: Docker['modem'],
  stream: NodeJS.ReadableStream,
  onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => unknown,
): Promise<'end' | 'cut'> {
  return new Promise((resolve, reject) => {
    const sink = (name: 'stdout' | 'stderr') =>
      ({ write: (d: Buffer) => (onOutput(name, d), true) }) as unknown as NodeJS.WritableStream
    modem.demuxStream(stream, sink('stdout'), sink('stderr'))
    stream.on('end', () => resolve('end'))
    stream.on('close', () => resolve('cut'))
    stream.on('error', reject)
  })
}

class ContainerJob implements JobEnvironment {
  readonly workspace = WORKSPACE
  readonly temp = '/tmp/yardmaster'
  // Steps run in the container's own processes, which go on when the orchestrator dies.
  readonly records = `${this.temp}/_record`
  readonly description: string
  readonly ref: string

  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    private readonly services: Docker.Container[],
    private readonly graceMs: number,
    private readonly link: (() => object | null) | null,
  ) {
    this.description = `container ${container.id.slice(0, 12)}`
    this.ref = container.id
  }

  async runStep(cmd: StepCommand, onOutput: OutputSink, signal: AbortSignal): Promise<number | null> {
    if (signal.aborted) return null
    const delivery = execDelivery(stepFiles(cmd, { parent: this.temp, workspace: WORKSPACE, exports: null }))
    return this.follow(
      delivery.cmd,
      { ...cmd.env, GITHUB_WORKSPACE: WORKSPACE, ...delivery.env },
      onOutput,
      signal,
    )
  }

  /** Runs `cmd` as an exec of the job's container, its output to `onOutput`; its exit code. */
  private async follow(
    cmd: string[],
    env: Record<string, string>,
    onOutput: OutputSink,
    signal: AbortSignal,
  ): Promise<number | null> {
    const exec = await this.container.exec({
      Cmd: cmd,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: WORKSPACE,
      AttachStdout: true,
      AttachStderr: true,
    })
    const stream = await exec.start({ hijack: false, stdin: false })
    const connection = this.link?.() ?? null
    // docker exec has no kill. Stopping: SIGTERM to every process of the job's container but its
    // first (from a second exec: kill -1 spares init and the caller), so the step may clean up;
    // after the grace period the container is killed, which ends the stream.
    // (Aborted while the exec was made: the step has started all the same, and is stopped.)
    const disarm = stopGracefully(
      signal,
      this.graceMs,
      () => void this.signalAll('TERM'),
      () => void this.container.kill().catch(() => {}),
    )
    let ended: 'end' | 'cut'
    try {
      ended = await demux(this.docker.modem, stream, onOutput)
    } finally {
      disarm()
    }
    if (signal.aborted) return null
    // Cut off: asking the node how the step is would wait for a connection that is gone.
    if (ended === 'cut' || (this.link && this.link() !== connection))
      throw new Error(
        'the connection to the node dropped while the step was running (its output stream closed)',
      )
    const info = await exec.inspect()
    // The output stream closed but the step goes on: the connection to the node dropped.
    if (info.Running)
      throw new Error(
        'the connection to the node dropped while the step was running (its output stream closed)',
      )
    return info.ExitCode ?? null
  }

  async resumeStep(
    record: string,
    onOutput: OutputSink,
    signal: AbortSignal,
  ): Promise<number | null | 'not-started'> {
    if ((await this.readFile(`${record}/pid`, signal)) === null) return 'not-started'
    return this.follow(['sh', '-c', followRecord(record)], {}, onOutput, signal)
  }

  async readFile(path: string, signal: AbortSignal): Promise<string | null> {
    let text = ''
    const code = await this.follow(
      ['sh', '-c', `[ -e ${shellQuote(path)} ] || exit 3; cat ${shellQuote(path)}`],
      {},
      (stream, chunk) => void (stream === 'stdout' && (text += chunk.toString('utf8'))),
      signal,
    )
    if (code === 3) return null
    if (code !== 0) throw new Error(`could not read ${path} in the job's container (exit ${code})`)
    return text
  }

  async imageId(): Promise<string | null> {
    try {
      return (await this.container.inspect()).Image ?? null
    } catch {
      return null
    }
  }

  /** Signals every process of the job's container but its init. Never throws. */
  private async signalAll(name: 'TERM'): Promise<void> {
    try {
      const exec = await this.container.exec({ Cmd: ['sh', '-c', `kill -${name} -1 2>/dev/null; exit 0`] })
      const s = await exec.start({ hijack: false, stdin: false })
      s.resume()
    } catch {
      /* the container or the connection is gone: the kill after the grace period settles it */
    }
  }

  async dispose(): Promise<boolean> {
    let removed = true
    const gone = (e: { statusCode?: number }) => void (removed &&= e.statusCode === 404)
    // Services first: they live in the job container's network namespace.
    for (const s of this.services) await s.remove({ force: true }).catch(gone)
    await this.container.remove({ force: true }).catch(gone)
    return removed
  }
}

/** container.options' --cpus, --memory and --gpus as engine limits. */
function hostLimits(r: JobSetup['resources']): Docker.HostConfig {
  if (!r) return {}
  const out: Docker.HostConfig = {}
  if (r.cpus !== null) out.NanoCpus = Math.round(r.cpus * 1e9)
  if (r.memoryBytes !== null) out.Memory = r.memoryBytes
  if (r.gpus !== null)
    out.DeviceRequests = [{ Driver: '', Count: r.gpus === 'all' ? -1 : r.gpus, Capabilities: [['gpu']] }]
  return out
}
