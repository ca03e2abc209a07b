import { describe, expect, it } from 'vitest'
import { LocalCommandRunner } from '../executor/command-runner'
import { NodeUnreachableError } from './farm-errors'
import type { Farm, FarmNode } from './farm-model'
import { probeFarm } from './farm-status'
import type { NodeHandle } from './node-handle'

const node = (name: string, host: string, executor: 'docker' | 'shell', labels: string[] = []): FarmNode => ({
  name,
  host,
  port: 2222,
  user: 'ci',
  identityFile: null,
  executor,
  labels: ['self-hosted', ...labels],
  slots: 1,
  defaultImage: null,
  source: null,
})

describe('probeFarm', () => {
  const here = node('here', 'local', 'shell', ['linux'])
  const away = node('away', '10.0.0.9', 'docker', ['gpu'])
  const farm: Farm = { file: '/f.yml', knownHosts: '/k', nodes: [away, here], platforms: {} }

  it('probes every node at once; an unreachable one gets its reason and declared labels', async () => {
    const opened: string[] = []
    let release!: () => void
    const awayFails = new Promise<never>((_, reject) => {
      release = () => reject(new NodeUnreachableError(away, 'connection refused'))
    })
    const statuses = probeFarm(farm, (n) => {
      opened.push(n.name)
      if (n === away) return awayFails
      // `here` is opened while `away` is still connecting: nobody waits for the slow one.
      release()
      return Promise.resolve({
        node: n,
        ssh: null,
        docker: null,
        commands: new LocalCommandRunner(),
      } as NodeHandle)
    })
    const [a, h] = await statuses
    expect(opened).toEqual(['away', 'here'])
    expect(a).toMatchObject({
      name: 'away',
      address: 'ci@10.0.0.9:2222',
      reachable: false,
      facts: null,
      capabilities: { labels: ['self-hosted', 'gpu', 'docker'], os: null },
    })
    expect(a!.unreachableReason).toContain('cannot reach node away (ci@10.0.0.9:2222): connection refused')
    expect(h).toMatchObject({
      name: 'here',
      address: 'this machine',
      reachable: true,
      unreachableReason: null,
    })
    expect(h!.capabilities.labels).toEqual(expect.arrayContaining(['self-hosted', 'linux']))
    expect(h!.facts!.host!.kernel).toBe('Linux')
  })
})
