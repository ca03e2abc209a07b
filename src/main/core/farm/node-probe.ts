/**
 * Probes a node over its existing connection: the engine (`docker info`) and the machine (one
 * POSIX shell script: uname, cores, memory, free disk, tools). A probe never throws for a part
 * that failed: it says what it could not learn in `problems`, so one bad answer does not hide
 * the rest. Parsing is pure and tested apart from the network.
 */
import type { EngineFacts, HostFacts, NodeFacts } from '../../../shared/model'
import { askEngine, runCollect, type NodeHandle } from './node-handle'

/** Tools a shell node's jobs commonly need; reported so `yardmaster nodes` can show what is missing. */
export const PROBED_TOOLS = ['git', 'bash', 'python3', 'docker'] as const

export interface ProbeOptions {
  /** Give up on each part (engine, host) after this long. @default 10000 */
  timeoutMs?: number
  signal?: AbortSignal
}

/** The part of `GET /info` the probe reads (dockerode types it loosely). */
export interface DockerInfo {
  ServerVersion?: string
  OSType?: string
  OperatingSystem?: string
  Architecture?: string
  NCPU?: number
  MemTotal?: number
  Labels?: string[] | null
  Runtimes?: Record<string, unknown> | null
  Driver?: string
  DockerRootDir?: string
}

export async function probeNode(handle: NodeHandle, opts: ProbeOptions = {}): Promise<NodeFacts> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const deadline = () =>
    opts.signal
      ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs)
  const problems: string[] = []

  let info: DockerInfo | null = null
  if (handle.docker) {
    try {
      info = await askEngine<DockerInfo>(handle.docker, 'info', deadline())
    } catch (e) {
      problems.push(`engine: docker info failed: ${timeoutAware(e, timeoutMs)}`)
    }
  }

  let host: HostFacts | null = null
  let dataRootFree: number | null = null
  const script = hostProbeScript({
    dataRoot: info?.DockerRootDir ?? null,
    tools: handle.node.executor === 'shell',
  })
  try {
    const r = await runCollect(handle.commands, script, deadline())
    if (r.code === null) throw new Error(`no answer within ${timeoutMs} ms`)
    const parsed = parseHostProbe(r.stdout)
    host = parsed.host
    dataRootFree = parsed.dataRootFreeBytes
    if (!host.kernel)
      problems.push(`host: the probe printed nothing usable (${r.stderr.trim() || 'no error'})`)
  } catch (e) {
    problems.push(`host: ${timeoutAware(e, timeoutMs)}`)
  }
  if (info && info.DockerRootDir && dataRootFree === null)
    problems.push(`engine: could not measure free space of ${info.DockerRootDir}`)

  return { engine: info ? engineFacts(info, dataRootFree) : null, host, problems, probedAt: Date.now() }
}

function timeoutAware(e: unknown, ms: number): string {
  const err = e as Error
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${ms} ms`
  return err.message
}

export function engineFacts(info: DockerInfo, dataRootFreeBytes: number | null): EngineFacts {
  const labels: Record<string, string> = {}
  for (const l of info.Labels ?? []) {
    const i = l.indexOf('=')
    if (i < 0) labels[l] = ''
    else labels[l.slice(0, i)] = l.slice(i + 1)
  }
  return {
    serverVersion: info.ServerVersion ?? '',
    osType: info.OSType ?? '',
    operatingSystem: info.OperatingSystem ?? '',
    architecture: info.Architecture ?? '',
    cpus: info.NCPU ?? 0,
    memoryBytes: info.MemTotal ?? 0,
    labels,
    runtimes: Object.keys(info.Runtimes ?? {}).sort(),
    storageDriver: info.Driver ?? '',
    dataRoot: info.DockerRootDir ?? '',
    dataRootFreeBytes,
  }
}

/**
 * One round trip for every host fact. POSIX sh, so it runs under any login shell that speaks it
 * (bash, dash, zsh on macOS); each line is `key value`, and a fact that cannot be read is absent.
 */
export function hostProbeScript(opts: { dataRoot: string | null; tools: boolean }): string {
  const lines = [
    'echo "uname $(uname -s 2>/dev/null) $(uname -m 2>/dev/null)"',
    // nproc honours CPU affinity and cgroup limits; macOS has only getconf/sysctl.
    'echo "cores $( (nproc || getconf _NPROCESSORS_ONLN || sysctl -n hw.ncpu) 2>/dev/null | head -n 1)"',
    'if [ -r /proc/meminfo ]; then echo "memkb $(grep "^MemTotal:" /proc/meminfo | tr -s " " | cut -d " " -f 2)";' +
      ' else echo "membytes $(sysctl -n hw.memsize 2>/dev/null)"; fi',
    'echo "dfroot $(df -Pk / 2>/dev/null | tail -n 1)"',
  ]
  if (opts.dataRoot) lines.push(`echo "dfdata $(df -Pk ${shQuote(opts.dataRoot)} 2>/dev/null | tail -n 1)"`)
  if (opts.tools)
    lines.push(
      `for t in ${PROBED_TOOLS.join(' ')}; do if command -v "$t" >/dev/null 2>&1; then echo "tool $t"; fi; done`,
    )
  return lines.join('\n')
}

export function parseHostProbe(stdout: string): { host: HostFacts; dataRootFreeBytes: number | null } {
  const host: HostFacts = {
    kernel: '',
    machine: '',
    cpus: null,
    memoryBytes: null,
    rootFreeBytes: null,
    tools: null,
  }
  let dataRootFreeBytes: number | null = null
  for (const raw of stdout.split('\n')) {
    const line = raw.trim()
    const sp = line.indexOf(' ')
    const key = sp < 0 ? line : line.slice(0, sp)
    const value = sp < 0 ? '' : line.slice(sp + 1).trim()
    switch (key) {
      case 'uname': {
        const [kernel = '', machine = ''] = value.split(/\s+/)
        host.kernel = kernel
        host.machine = machine
        break
      }
      case 'cores':
        host.cpus = positiveInt(value)
        break
      case 'memkb': {
        const kb = positiveInt(value)
        host.memoryBytes = kb === null ? null : kb * 1024
        break
      }
      case 'membytes':
        host.memoryBytes = positiveInt(value)
        break
      case 'dfroot':
        host.rootFreeBytes = dfAvailableBytes(value)
        break
      case 'dfdata':
        dataRootFreeBytes = dfAvailableBytes(value)
        break
      case 'tool':
        host.tools = [...(host.tools ?? []), value]
        break
    }
  }
  return { host, dataRootFreeBytes }
}

function positiveInt(s: string): number | null {
  return /^\d+$/.test(s) && Number(s) > 0 ? Number(s) : null
}

/**
 * Available bytes from one `df -Pk` data line. Read from the right of the numbers, since the
 * filesystem name and the mount point may both contain spaces:
 * `<fs> <1024-blocks> <used> <available> <capacity>% <mounted on>`.
 */
export function dfAvailableBytes(line: string): number | null {
  const m = /\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+|-)%\s+\S/.exec(` ${line}`)
  return m ? Number(m[3]) * 1024 : null
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
