import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { EngineFacts, HostFacts, NodeFacts } from '../../../shared/model'
import { githubArch, githubOs, isGpuRuntime, mergeCapabilities } from './capabilities'

const engine = (over: Partial<EngineFacts> = {}): EngineFacts => ({
  serverVersion: '20.10.24',
  osType: 'linux',
  operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  architecture: 'x86_64',
  cpus: 8,
  memoryBytes: 16e9,
  labels: {},
  runtimes: ['runc', 'io.containerd.runc.v2'],
  storageDriver: 'overlay2',
  dataRoot: '/var/lib/docker',
  dataRootFreeBytes: 50e9,
  ...over,
})
const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  kernel: 'Linux',
  machine: 'x86_64',
  cpus: 4,
  memoryBytes: 8e9,
  rootFreeBytes: 20e9,
  tools: null,
  ...over,
})
const facts = (e: EngineFacts | null, h: HostFacts | null): NodeFacts => ({
  engine: e,
  host: h,
  problems: [],
  probedAt: 0,
})
const dockerNode = (...labels: string[]) => ({
  executor: 'docker' as const,
  labels: ['self-hosted', ...labels],
})
const shellNode = (...labels: string[]) => ({
  executor: 'shell' as const,
  labels: ['self-hosted', ...labels],
})

describe('githubOs', () => {
  it.each([
    ['linux', 'linux'],
    ['Linux', 'linux'],
    ['Darwin', 'macos'],
    ['darwin', 'macos'],
    ['macOS', 'macos'],
    ['windows', 'windows'],
    ['Windows_NT', 'windows'],
    ['MINGW64_NT-10.0-19045', 'windows'],
    ['MSYS_NT-10.0', 'windows'],
    ['CYGWIN_NT-10.0', 'windows'],
    ['FreeBSD', 'freebsd'],
    [' linux\n', 'linux'],
    ['', null],
  ])('%j is %j', (raw, label) => expect(githubOs(raw)).toBe(label))
})

describe('githubArch', () => {
  it.each([
    ['x86_64', 'x64'],
    ['amd64', 'x64'],
    ['X64', 'x64'],
    ['aarch64', 'arm64'],
    ['arm64', 'arm64'],
    ['arm64e', 'arm64'],
    ['armv8l', 'arm64'],
    ['armv7l', 'arm'],
    ['armv6l', 'arm'],
    ['armhf', 'arm'],
    ['arm', 'arm'],
    ['i686', 'x86'],
    ['i386', 'x86'],
    ['ia32', 'x86'],
    ['riscv64', 'riscv64'],
    ['s390x', 's390x'],
    ['', null],
  ])('%j is %j', (raw, label) => expect(githubArch(raw)).toBe(label))
})

describe('isGpuRuntime', () => {
  it.each([
    ['nvidia', true],
    ['nvidia-experimental', true],
    ['NVIDIA', true],
    ['amd', true],
    ['runc', false],
    ['io.containerd.runc.v2', false],
    ['crun', false],
    ['runsc', false],
  ])('%s: %s', (name, gpu) => expect(isGpuRuntime(name)).toBe(gpu))
})

describe('mergeCapabilities', () => {
  it('gives a docker node self-hosted, OS and arch from its engine, and docker', () => {
    const c = mergeCapabilities(dockerNode('linux', 'general'), facts(engine(), host({ machine: 'aarch64' })))
    expect(c.automatic).toEqual(['self-hosted', 'linux', 'x64', 'docker'])
    expect(c.labels).toEqual(['self-hosted', 'linux', 'general', 'x64', 'docker'])
    expect(c).toMatchObject({ os: 'linux', arch: 'x64', gpu: false, notes: [] })
  })

  it('takes cores, memory and the data root free space from the engine for docker nodes', () => {
    const c = mergeCapabilities(dockerNode(), facts(engine(), host()))
    expect(c).toMatchObject({ cpus: 8, memoryBytes: 16e9, diskFreeBytes: 50e9 })
  })

  it('falls back to the host root disk when the data root could not be measured', () => {
    const c = mergeCapabilities(dockerNode(), facts(engine({ dataRootFreeBytes: null }), host()))
    expect(c.diskFreeBytes).toBe(20e9)
  })

  it('gives a shell node its OS, arch, cores, memory, root disk and tools from the host', () => {
    const c = mergeCapabilities(
      shellNode('signing'),
      facts(engine(), host({ kernel: 'Darwin', machine: 'arm64', tools: ['git', 'bash'] })),
    )
    expect(c.automatic).toEqual(['self-hosted', 'macos', 'arm64'])
    expect(c.labels).toEqual(['self-hosted', 'signing', 'macos', 'arm64'])
    expect(c).toMatchObject({ cpus: 4, memoryBytes: 8e9, diskFreeBytes: 20e9, tools: ['git', 'bash'] })
  })

  it('never labels a shell node docker, even when docker is installed there', () => {
    const c = mergeCapabilities(shellNode(), facts(null, host({ tools: ['docker'] })))
    expect(c.labels).not.toContain('docker')
  })

  it('adds gpu when a GPU runtime is installed, and not otherwise', () => {
    const withGpu = engine({ runtimes: ['runc', 'nvidia'] })
    expect(mergeCapabilities(dockerNode(), facts(withGpu, null)).automatic).toContain('gpu')
    expect(mergeCapabilities(dockerNode(), facts(withGpu, null)).gpu).toBe(true)
    expect(mergeCapabilities(dockerNode(), facts(engine(), null)).labels).not.toContain('gpu')
  })

  it('keeps a declared gpu label on a node without a GPU runtime (the admin decides)', () => {
    const c = mergeCapabilities(dockerNode('gpu'), facts(engine(), null))
    expect(c.labels).toContain('gpu')
    expect(c.gpu).toBe(false)
    expect(c.automatic).not.toContain('gpu')
  })

  it('makes engine labels available as key=value, sorted, lower-cased', () => {
    const c = mergeCapabilities(
      dockerNode(),
      facts(engine({ labels: { 'farm.node': 'n2', GPU: 'Yes', standalone: '' } }), null),
    )
    expect(c.engineLabels).toEqual(['farm.node=n2', 'gpu=yes', 'standalone'])
    expect(c.labels).toEqual(expect.arrayContaining(['farm.node=n2', 'gpu=yes', 'standalone']))
  })

  it('keeps a declared architecture that disagrees with the probe, skips the probed one and says so', () => {
    // The lab's n3: declared arm64, really x86_64.
    const c = mergeCapabilities(dockerNode('linux', 'arm64'), facts(engine(), host()))
    expect(c.labels).toContain('arm64')
    expect(c.labels).not.toContain('x64')
    expect(c.arch).toBe('x64')
    expect(c.notes).toEqual([
      'declared architecture arm64 but the engine reports x86_64 (x64); the declared label is kept and x64 is not added',
    ])
  })

  it('keeps a declared OS that disagrees with the probe and says so', () => {
    const c = mergeCapabilities(shellNode('macos'), facts(null, host({ kernel: 'Linux' })))
    expect(c.labels).not.toContain('linux')
    expect(c.notes).toEqual([
      'declared OS macos but the host reports Linux (linux); the declared label is kept and linux is not added',
    ])
  })

  it('adds nothing twice when the declaration agrees with the probe', () => {
    const c = mergeCapabilities(dockerNode('Linux', 'X64', 'docker'), facts(engine(), null))
    expect(c.labels).toEqual(['self-hosted', 'linux', 'x64', 'docker'])
    expect(c.notes).toEqual([])
  })

  it('without facts, has the declared labels and what the executor implies', () => {
    expect(mergeCapabilities(dockerNode('linux'), null)).toEqual({
      labels: ['self-hosted', 'linux', 'docker'],
      declared: ['self-hosted', 'linux'],
      automatic: ['self-hosted', 'docker'],
      engineLabels: [],
      os: null,
      arch: null,
      cpus: null,
      memoryBytes: null,
      diskFreeBytes: null,
      gpu: false,
      tools: null,
      notes: [],
    })
    expect(mergeCapabilities(shellNode(), null).labels).toEqual(['self-hosted'])
  })

  it('uses the host for a docker node whose engine did not answer', () => {
    const c = mergeCapabilities(dockerNode(), facts(null, host({ machine: 'aarch64' })))
    expect(c).toMatchObject({ os: 'linux', arch: 'arm64', cpus: 4, diskFreeBytes: 20e9 })
  })

  it('uses the engine for a shell node whose host probe failed', () => {
    const c = mergeCapabilities(shellNode(), facts(engine(), null))
    expect(c).toMatchObject({ os: 'linux', arch: 'x64', cpus: 8, diskFreeBytes: null })
  })

  it('always holds every declared, automatic and engine label once, in lower case', () => {
    const label = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._=-]{0,8}$/)
    fc.assert(
      fc.property(
        fc.array(label, { maxLength: 6 }),
        fc.constantFrom('docker' as const, 'shell' as const),
        fc.option(fc.constantFrom('linux', 'Darwin', 'windows', 'plan9'), { nil: undefined }),
        fc.option(fc.constantFrom('x86_64', 'aarch64', 'armv7l', 'i686', 'mips'), { nil: undefined }),
        fc.array(fc.constantFrom('runc', 'nvidia', 'crun'), { maxLength: 3 }),
        fc.dictionary(label, fc.constantFrom('', 'yes', 'N1')),
        (labels, executor, os, arch, runtimes, engineLabels) => {
          const f =
            os || arch
              ? facts(
                  engine({ osType: os ?? '', architecture: arch ?? '', runtimes, labels: engineLabels }),
                  host({ kernel: os ?? '', machine: arch ?? '' }),
                )
              : null
          const c = mergeCapabilities({ executor, labels: ['self-hosted', ...labels] }, f)
          expect(new Set(c.labels).size).toBe(c.labels.length)
          for (const l of [...c.declared, ...c.automatic, ...c.engineLabels]) expect(c.labels).toContain(l)
          for (const l of labels) expect(c.labels).toContain(l.toLowerCase())
          expect(c.labels).toContain('self-hosted')
          expect(c.labels.every((l) => l === l.toLowerCase())).toBe(true)
          expect(c.labels.includes('docker')).toBe(
            executor === 'docker' || c.declared.includes('docker') || c.engineLabels.includes('docker'),
          )
          // At most one OS and one architecture are added automatically.
          expect(c.automatic.filter((l) => ['linux', 'macos', 'windows'].includes(l)).length).toBeLessThan(2)
          expect(c.automatic.filter((l) => ['x64', 'arm64', 'arm', 'x86'].includes(l)).length).toBeLessThan(2)
        },
      ),
    )
  })
})
