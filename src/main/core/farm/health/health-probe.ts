/**
 * The health probe: cheap enough to run every few seconds over a node's pooled connection. One
 * exec of a small POSIX script (clock, load, CPU counters, memory, free disk) and, on docker
 * nodes, the engine's ping (timed) and its list of running containers, all at once. Parsing and
 * judging (what counts as degraded) are pure and tested apart from the network.
 */
import {
  AuthenticationError,
  EngineUnavailableError,
  HostKeyMismatchError,
  UnknownHostKeyError,
} from '../farm-errors'
import { askEngine, runCollect, type NodeHandle } from '../node-handle'
import type { UnreachableCause } from './node-state'
import type { Farm, FarmNode, HealthLimits } from '../farm-model'
import { dfAvailableBytes } from '../node-probe'
import { SHELL_WORKSPACE_PREFIX } from '../../executor/shell-executor'
import type { HealthSample } from '../../../../shared/model'

export type { HealthSample } from '../../../../shared/model'

/** CPU counters from /proc/stat, kept between samples to turn them into a percentage. */
export interface CpuTimes {
  busy: number
  total: number
}

/** Every limit of a node's health, filled in (`HealthLimits` in farm-model.ts says what each is). */
export type HealthThresholds = Required<HealthLimits>

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  loadPerCore: 2,
  memoryUsedPct: 95,
  diskFreeBytes: 2 * 1024 ** 3,
  engineSlowMs: 2000,
  clockSkewMs: 30_000,
}

/**
 * The limits `node` is judged by: its own `health:`, then the farm's, then `base` (the
 * defaults, or what the monitor was given).
 */
export function thresholdsFor(
  farm: Pick<Farm, 'health'>,
  node: Pick<FarmNode, 'health'>,
  base: HealthThresholds = DEFAULT_THRESHOLDS,
): HealthThresholds {
  const out = { ...base }
  for (const limits of [farm.health, node.health])
    for (const [key, value] of Object.entries(limits ?? {}) as Array<[keyof HealthThresholds, unknown]>)
      if (typeof value === 'number' && key in out) out[key] = value
  return out
}

export function healthScript(dataRoot: string | null, shellJobs = false): string {
  const lines = [
    // Nanoseconds where date has %N (GNU, busybox); whole seconds elsewhere (macOS).
    't=$(date +%s%N 2>/dev/null); case "$t" in *N*|"") echo "now $(date +%s)000";; *) echo "nowns $t";; esac',
    'echo "cores $( (nproc || getconf _NPROCESSORS_ONLN || sysctl -n hw.ncpu) 2>/dev/null | head -n 1)"',
    'if [ -r /proc/loadavg ]; then echo "load $(cut -d " " -f 1 /proc/loadavg)";' +
      ' else echo "load $(sysctl -n vm.loadavg 2>/dev/null | tr -d "{}" | tr -s " " | cut -d " " -f 2)"; fi',
    'if [ -r /proc/stat ]; then echo "cpu $(head -n 1 /proc/stat)"; fi',
    'if [ -r /proc/meminfo ]; then echo "mem $(grep -E "^(MemTotal|MemAvailable):" /proc/meminfo | tr -s " " | cut -d " " -f 2 | tr "\\n" " ")"; fi',
    'echo "dfroot $(df -Pk / 2>/dev/null | tail -n 1)"',
  ]
  if (dataRoot) lines.push(`echo "dfdata $(df -Pk ${shQuote(dataRoot)} 2>/dev/null | tail -n 1)"`)
  // Shell nodes have no containers to count: a job of ours is a workspace the shell executor made,
  // as this user (other users' jobs on a shared machine are not ours).
  if (shellJobs)
    lines.push(
      `echo "jobs $(find "\${TMPDIR:-/tmp}/" -maxdepth 1 -name '${SHELL_WORKSPACE_PREFIX}[0-9]*' -user "$(id -u)" 2>/dev/null | wc -l)"`,
    )
  return lines.join('\n')
}

export interface ParsedHealth {
  nodeClockMs: number | null
  cores: number | null
  load1: number | null
  cpu: CpuTimes | null
  memUsedPct: number | null
  rootFreeBytes: number | null
  dataFreeBytes: number | null
  /** Shell nodes: job workspaces of ours. */
  jobs: number | null
}

export function parseHealth(stdout: string): ParsedHealth {
  const out: ParsedHealth = {
    nodeClockMs: null,
    cores: null,
    load1: null,
    cpu: null,
    memUsedPct: null,
    rootFreeBytes: null,
    dataFreeBytes: null,
    jobs: null,
  }
  for (const raw of stdout.split('\n')) {
    const line = raw.trim()
    const sp = line.indexOf(' ')
    const key = sp < 0 ? line : line.slice(0, sp)
    const value = sp < 0 ? '' : line.slice(sp + 1).trim()
    switch (key) {
      case 'nowns':
        if (/^\d+$/.test(value)) out.nodeClockMs = Number(BigInt(value) / 1_000_000n)
        break
      case 'now':
        if (/^\d+$/.test(value)) out.nodeClockMs = Number(value)
        break
      case 'cores':
        out.cores = /^\d+$/.test(value) && Number(value) > 0 ? Number(value) : null
        break
      case 'load': {
        const n = Number(value.split(/\s+/)[0])
        out.load1 = value && Number.isFinite(n) ? n : null
        break
      }
      case 'cpu': {
        // "cpu user nice system idle iowait irq softirq steal guest guest_nice" (guest is in user already)
        const f = value.split(/\s+/).slice(1, 9).map(Number)
        if (f.length >= 4 && f.every(Number.isFinite)) {
          const total = f.reduce((a, b) => a + b, 0)
          out.cpu = { busy: total - f[3]! - (f[4] ?? 0), total }
        }
        break
      }
      case 'mem': {
        const [total, available] = value.split(/\s+/).map(Number)
        if (total && available !== undefined && Number.isFinite(available))
          out.memUsedPct = round1(100 * (1 - available / total))
        break
      }
      case 'dfroot':
        out.rootFreeBytes = dfAvailableBytes(value)
        break
      case 'dfdata':
        out.dataFreeBytes = dfAvailableBytes(value)
        break
      case 'jobs':
        out.jobs = /^\d+$/.test(value) ? Number(value) : null
        break
    }
  }
  return out
}

/** CPU busy between two readings, in percent; null when there is no earlier one or no time passed. */
export function cpuPercent(prev: CpuTimes | null, now: CpuTimes | null): number | null {
  if (!prev || !now || now.total <= prev.total) return null
  return round1((100 * (now.busy - prev.busy)) / (now.total - prev.total))
}

/** What makes a node that answers `degraded`, in words; empty when nothing does. */
export function judgeHealth(
  s: HealthSample,
  t: HealthThresholds = DEFAULT_THRESHOLDS,
  dataRoot: string | null = null,
): string[] {
  const problems: string[] = []
  if (s.load1 !== null && s.cpus && s.load1 / s.cpus > t.loadPerCore)
    problems.push(`high load (${s.load1} on ${s.cpus} cores)`)
  if (s.memUsedPct !== null && s.memUsedPct > t.memoryUsedPct)
    problems.push(`low memory (${s.memUsedPct}% used)`)
  if (s.rootFreeBytes !== null && s.rootFreeBytes < t.diskFreeBytes)
    problems.push(`low disk on / (${gib(s.rootFreeBytes)} free)`)
  if (s.dataFreeBytes !== null && s.dataFreeBytes < t.diskFreeBytes)
    problems.push(
      `low disk on the engine's data root${dataRoot ? ` ${dataRoot}` : ''} (${gib(s.dataFreeBytes)} free)`,
    )
  if (s.engineMs !== null && s.engineMs > t.engineSlowMs)
    problems.push(`slow engine (ping ${Math.round(s.engineMs)} ms)`)
  if (s.skewMs !== null && Math.abs(s.skewMs) > t.clockSkewMs)
    problems.push(
      `clock skew (the node is ${Math.round(Math.abs(s.skewMs) / 1000)} s ${s.skewMs > 0 ? 'ahead' : 'behind'})`,
    )
  return problems
}

export type HealthProbeResult =
  | { ok: true; sample: HealthSample; cpu: CpuTimes | null; problems: string[] }
  | { ok: false; cause: UnreachableCause; reason: string }

export interface HealthProbeOptions {
  /** Limit for the whole probe. @default 4000 */
  timeoutMs?: number
  /** The engine's data root (from `docker info`), to measure its free space. */
  dataRoot?: string | null
  /** The previous sample's CPU counters. */
  previousCpu?: CpuTimes | null
  thresholds?: HealthThresholds
  signal?: AbortSignal
}

/** Probes once. Never throws: a node that does not answer is a result too. */
export async function probeHealth(
  handle: NodeHandle,
  opts: HealthProbeOptions = {},
): Promise<HealthProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 4000
  const limit = timeoutSignal(timeoutMs)
  const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit
  const at = Date.now()
  const t0 = performance.now()
  const host = runCollect(handle.commands, healthScript(opts.dataRoot ?? null, !handle.docker), signal).then(
    (r) => ({
      ...r,
      ms: performance.now() - t0,
      localMidMs: at + (performance.now() - t0) / 2,
    }),
  )
  const engine = handle.docker
    ? (async () => {
        const docker = handle.docker!
        const e0 = performance.now()
        await askEngine(docker, 'ping', signal)
        const engineMs = performance.now() - e0
        // dockerode honours abortSignal here too; running containers only.
        const list = (await (
          docker.listContainers as unknown as (o: {
            abortSignal: AbortSignal
          }) => Promise<Array<{ Labels?: Record<string, string> }>>
        ).call(docker, { abortSignal: signal })) as Array<{ Labels?: Record<string, string> }>
        const ours = list.filter((c) => c.Labels?.['io.yardmaster.managed'] === 'true').length
        return { engineMs, ours, others: list.length - ours }
      })()
    : Promise.resolve(null)
  // A stalled connection may never even open the channel: the limit must not depend on it.
  const [h, e] = await Promise.allSettled([untilAborted(host, signal), untilAborted(engine, signal)])

  if (h.status === 'rejected' || h.value.code === null) {
    const err = h.status === 'rejected' ? (h.reason as Error) : null
    const late = !err || err.name === 'TimeoutError' || err.name === 'AbortError'
    return { ok: false, cause: causeOf(err), reason: late ? `no answer within ${timeoutMs} ms` : err.message }
  }
  if (e.status === 'rejected') {
    const err = e.reason as Error
    const why =
      err.name === 'TimeoutError' || err.name === 'AbortError'
        ? `no answer within ${timeoutMs} ms`
        : err.message
    return {
      ok: false,
      cause: 'engine',
      reason: `SSH answers but the Docker engine does not: ${why}`,
    }
  }
  const p = parseHealth(h.value.stdout)
  const sample: HealthSample = {
    at,
    load1: p.load1,
    cpus: p.cores,
    cpuPct: cpuPercent(opts.previousCpu ?? null, p.cpu),
    memUsedPct: p.memUsedPct,
    rootFreeBytes: p.rootFreeBytes,
    dataFreeBytes: p.dataFreeBytes,
    containersOurs: e.value ? e.value.ours : p.jobs,
    containersOthers: e.value?.others ?? null,
    engineMs: e.value ? round1(e.value.engineMs) : null,
    rttMs: round1(h.value.ms),
    skewMs: p.nodeClockMs === null ? null : Math.round(p.nodeClockMs - h.value.localMidMs),
  }
  return {
    ok: true,
    sample,
    cpu: p.cpu,
    problems: judgeHealth(sample, opts.thresholds, opts.dataRoot ?? null),
  }
}

/** Which kind of trouble an error is: the node's key or our credentials, its engine, or the way to it. */
export function causeOf(e: Error | null): UnreachableCause {
  if (e instanceof HostKeyMismatchError || e instanceof UnknownHostKeyError) return 'host-key'
  if (e instanceof AuthenticationError) return 'auth'
  if (e instanceof EngineUnavailableError) return 'engine'
  return 'network'
}

/**
 * A signal that aborts with a TimeoutError after `ms`, as `AbortSignal.timeout` does, but on
 * `setTimeout`, so that tests drive it with fake timers instead of waiting for the wall clock.
 */
export function timeoutSignal(ms: number): AbortSignal {
  const ac = new AbortController()
  const timer = setTimeout(
    () => ac.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    ms,
  )
  timer.unref?.()
  return ac.signal
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e as Error)
      },
    )
  })
}

function round1(n: number): number {
  return Math.round(n * 10) / 10
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
