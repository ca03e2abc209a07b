import { arch, platform } from 'node:os'
import { afterEach, describe, expect, it, vi } from 'vitest'

const ping = vi.fn<() => Promise<unknown>>()
vi.mock('../transport/docker-over-ssh', () => ({ localDocker: () => ({ ping }) }))

const { defaultFarm, LOCAL_DEFAULT_IMAGE, runnerLabels } = await import('./default-farm')
const { defaultKnownHosts } = await import('./farm-file')

afterEach(() => ping.mockReset())

describe('runnerLabels', () => {
  it("uses GitHub's names for this OS and CPU", () => {
    const [os, cpu] = runnerLabels()
    expect(os).toBe({ linux: 'linux', darwin: 'macos', win32: 'windows' }[platform() as string] ?? platform())
    expect(cpu).toBe({ x64: 'x64', arm64: 'arm64', arm: 'arm', ia32: 'x86' }[arch() as string] ?? arch())
  })
})

describe('defaultFarm', () => {
  it('is this machine through Docker when the local engine answers', async () => {
    ping.mockResolvedValue('OK')
    const farm = await defaultFarm(1000)
    expect(farm.file).toBeNull()
    expect(farm.knownHosts).toBe(defaultKnownHosts())
    expect(farm.nodes).toHaveLength(1)
    expect(farm.nodes[0]).toMatchObject({
      name: 'local',
      host: 'local',
      executor: 'docker',
      slots: 2,
      defaultImage: LOCAL_DEFAULT_IMAGE,
      source: null,
    })
    expect(farm.nodes[0]!.labels).toEqual(['self-hosted', ...runnerLabels(), 'local'])
  })

  it('lets YARDMASTER_LOCAL_IMAGE choose the default image', async () => {
    ping.mockResolvedValue('OK')
    vi.stubEnv('YARDMASTER_LOCAL_IMAGE', 'alpine:3.20')
    try {
      expect((await defaultFarm(1000)).nodes[0]!.defaultImage).toBe('alpine:3.20')
    } finally {
      vi.unstubAllEnvs()
    }
  })

  it('falls back to a local shell when the engine refuses', async () => {
    ping.mockRejectedValue(new Error('ENOENT /var/run/docker.sock'))
    const farm = await defaultFarm(1000)
    expect(farm.nodes[0]).toMatchObject({ executor: 'shell', defaultImage: null })
  })

  it('falls back to a local shell when the engine does not answer in time', async () => {
    ping.mockReturnValue(new Promise(() => {}))
    // Fake timers: "in time" is the 50 ms given, not however long a busy machine takes to get there.
    vi.useFakeTimers()
    try {
      let farm: Awaited<ReturnType<typeof defaultFarm>> | null = null
      void defaultFarm(50).then((f) => (farm = f))
      await vi.advanceTimersByTimeAsync(49)
      expect(farm).toBeNull()
      await vi.advanceTimersByTimeAsync(1)
      expect(farm!.nodes[0]!.executor).toBe('shell')
    } finally {
      vi.useRealTimers()
    }
  })
})
