/**
 * A node's capability set: what its farm file declares, merged with what a probe found, in the
 * label vocabulary GitHub's runners use (`self-hosted`, `linux`, `x64`…), so `runs-on` means the
 * same here as there. Pure: probing lives in node-probe.ts.
 */
import type { NodeCapabilities, NodeFacts } from '../../../shared/model'
import type { FarmNode } from './farm-model'

/** GitHub's OS labels for the names kernels and engines use; anything else is kept, lower-cased. */
export function githubOs(raw: string): string | null {
  const s = raw.trim().toLowerCase()
  if (!s) return null
  if (s === 'linux') return 'linux'
  if (s === 'darwin' || s === 'macos') return 'macos'
  if (s === 'windows' || s === 'windows_nt' || s === 'win32' || /^(mingw|msys|cygwin)/.test(s))
    return 'windows'
  return s
}

/** GitHub's architecture labels (x64, arm64, arm, x86) for `uname -m` and engine names. */
export function githubArch(raw: string): string | null {
  const s = raw.trim().toLowerCase()
  if (!s) return null
  if (['x86_64', 'amd64', 'x64', 'x86-64'].includes(s)) return 'x64'
  if (['aarch64', 'arm64', 'arm64e'].includes(s) || s.startsWith('armv8')) return 'arm64'
  if (s === 'arm' || s === 'armhf' || s === 'armel' || /^armv[5-7]/.test(s)) return 'arm'
  if (['i386', 'i486', 'i586', 'i686', 'x86', 'ia32', '386'].includes(s)) return 'x86'
  return s
}

const KNOWN_OS = ['linux', 'macos', 'windows']
const KNOWN_ARCH = ['x64', 'arm64', 'arm', 'x86']

/** Runtimes that give containers a GPU (NVIDIA container toolkit, AMD container toolkit). */
export function isGpuRuntime(name: string): boolean {
  const n = name.toLowerCase()
  return n.startsWith('nvidia') || n === 'amd' || n.startsWith('amd-')
}

/**
 * Declared labels plus automatic ones: `self-hosted`; the OS and architecture (from the engine
 * for docker nodes, since jobs run there; from the host for shell nodes); `docker` for docker
 * executors; `gpu` when a GPU runtime is installed; and every engine label as `key=value`.
 *
 * A declared OS or architecture wins over the probed one (an admin may route arm64 jobs to an
 * emulating x64 host on purpose); the disagreement is kept in `notes` so it is visible.
 * `facts` null (not probed, or unreachable) gives the declared labels and what the executor implies.
 */
export function mergeCapabilities(
  node: Pick<FarmNode, 'labels' | 'executor'>,
  facts: NodeFacts | null,
): NodeCapabilities {
  const declared = [...new Set(node.labels.map((l) => l.toLowerCase()))]
  const engine = facts?.engine ?? null
  const host = facts?.host ?? null
  const docker = node.executor === 'docker'
  const notes: string[] = []

  // Where jobs run decides which report counts: the engine for containers, the host for shells.
  const rawOs = docker ? (engine?.osType ?? host?.kernel) : (host?.kernel ?? engine?.osType)
  const rawArch = docker ? (engine?.architecture ?? host?.machine) : (host?.machine ?? engine?.architecture)
  const source = docker && engine ? 'the engine' : 'the host'
  const os = rawOs ? githubOs(rawOs) : null
  const arch = rawArch ? githubArch(rawArch) : null

  const runtimes = engine?.runtimes ?? []
  const gpu = runtimes.some(isGpuRuntime)

  const automatic = ['self-hosted']
  const addProbed = (kind: string, value: string | null, known: string[], raw: string | undefined) => {
    if (!value) return
    const other = declared.filter((l) => known.includes(l) && l !== value)
    if (other.length) {
      notes.push(
        `declared ${kind} ${other.join(', ')} but ${source} reports ${raw} (${value}); ` +
          `the declared label is kept and ${value} is not added`,
      )
      return
    }
    automatic.push(value)
  }
  addProbed('OS', os, KNOWN_OS, rawOs)
  addProbed('architecture', arch, KNOWN_ARCH, rawArch)
  if (docker) automatic.push('docker')
  if (gpu) automatic.push('gpu')

  const engineLabels = Object.entries(engine?.labels ?? {})
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`).toLowerCase())
    .sort()

  const cpus = docker ? (engine?.cpus ?? host?.cpus ?? null) : (host?.cpus ?? engine?.cpus ?? null)
  const memoryBytes = docker
    ? (engine?.memoryBytes ?? host?.memoryBytes ?? null)
    : (host?.memoryBytes ?? engine?.memoryBytes ?? null)
  const diskFreeBytes = docker
    ? (engine?.dataRootFreeBytes ?? host?.rootFreeBytes ?? null)
    : (host?.rootFreeBytes ?? null)

  return {
    labels: [...new Set([...declared, ...automatic, ...engineLabels])],
    declared,
    automatic: [...new Set(automatic)],
    engineLabels,
    os,
    arch,
    cpus,
    memoryBytes,
    diskFreeBytes,
    gpu,
    tools: host?.tools ?? null,
    notes,
  }
}
