import { mkdirSync, mkdtempSync } from 'node:fs'
import { availableParallelism, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { describe, expect, it } from 'vitest'
import { LocalCommandRunner, type CommandRunner } from '../executor/command-runner'
import type { FarmNode } from './farm-model'
import type { NodeHandle } from './node-handle'
import {
  dfAvailableBytes,
  engineFacts,
  hostProbeScript,
  parseHostProbe,
  probeNode,
  type DockerInfo,
} from './node-probe'
import { localNode } from '../../../../test/support/farm-node'

const node = (executor: 'docker' | 'shell'): FarmNode => localNode('n', { executor })

const INFO: DockerInfo = {
  ServerVersion: '20.10.24+dfsg1',
  OSType: 'linux',
  OperatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  Architecture: 'x86_64',
  NCPU: 2,
  MemTotal: 25276510208,
  Labels: ['farm.node=n2', 'gpu=yes', 'bare', 'url=http://x/?a=b'],
  Runtimes: { runc: { path: 'runc' }, 'io.containerd.runc.v2': { path: 'runc' }, nvidia: {} },
  Driver: 'overlay2',
  DockerRootDir: '/var/lib/docker',
}

describe('engineFacts', () => {
  it('reads what the capabilities need from docker info', () => {
    expect(engineFacts(INFO, 123)).toEqual({
      serverVersion: '20.10.24+dfsg1',
      osType: 'linux',
      operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
      architecture: 'x86_64',
      cpus: 2,
      memoryBytes: 25276510208,
      labels: { 'farm.node': 'n2', gpu: 'yes', bare: '', url: 'http://x/?a=b' },
      runtimes: ['io.containerd.runc.v2', 'nvidia', 'runc'],
      storageDriver: 'overlay2',
      dataRoot: '/var/lib/docker',
      dataRootFreeBytes: 123,
    })
  })

  it('tolerates an engine that leaves fields out', () => {
    expect(engineFacts({ Labels: null, Runtimes: null }, null)).toMatchObject({
      serverVersion: '',
      cpus: 0,
      labels: {},
      runtimes: [],
      dataRootFreeBytes: null,
    })
  })
})

describe('dfAvailableBytes', () => {
  it('reads the available 1K blocks of a df -Pk line', () => {
    expect(dfAvailableBytes('/dev/vda 264212084 25210356 81180556 24% /')).toBe(81180556 * 1024)
  })

  it('copes with spaces in the filesystem name and the mount point', () => {
    expect(dfAvailableBytes('map auto_home 0 0 0 100% /System/Volumes/Data/home')).toBe(0)
    expect(dfAvailableBytes('/dev/disk3s1 s 10 5 4 56% /Volumes/My Disk')).toBe(4096)
    expect(dfAvailableBytes('//server/share name 100 50 50 50% /mnt/a b')).toBe(51200)
  })

  it('returns null for anything else', () => {
    expect(dfAvailableBytes('')).toBeNull()
    expect(dfAvailableBytes('Filesystem 1024-blocks Used Available Capacity Mounted on')).toBeNull()
    expect(dfAvailableBytes('df: /nope: No such file or directory')).toBeNull()
  })
})

describe('parseHostProbe', () => {
  it('reads a Linux probe', () => {
    const out = [
      'uname Linux x86_64',
      'cores 2',
      'memkb 24684092',
      'dfroot /dev/vda 264212084 25210356 81180556 24% /',
      'dfdata /dev/vda 264212084 25210356 81180556 24% /var/lib/docker',
      'tool git',
      'tool bash',
      '',
    ].join('\n')
    expect(parseHostProbe(out)).toEqual({
      host: {
        kernel: 'Linux',
        machine: 'x86_64',
        cpus: 2,
        memoryBytes: 24684092 * 1024,
        rootFreeBytes: 81180556 * 1024,
        tools: ['git', 'bash'],
      },
      dataRootFreeBytes: 81180556 * 1024,
    })
  })

  it('reads a macOS probe (sysctl memory, no tools looked for)', () => {
    const out =
      'uname Darwin arm64\ncores 10\nmembytes 17179869184\ndfroot /dev/disk3s1s1 482797652 10 2000 1% /\n'
    expect(parseHostProbe(out)).toEqual({
      host: {
        kernel: 'Darwin',
        machine: 'arm64',
        cpus: 10,
        memoryBytes: 17179869184,
        rootFreeBytes: 2048000,
        tools: null,
      },
      dataRootFreeBytes: null,
    })
  })

  it('leaves out what the machine would not tell, and ignores noise', () => {
    const out = 'motd: welcome!\nuname Linux aarch64\ncores \nmemkb abc\ndfroot \ndfdata \n'
    expect(parseHostProbe(out)).toEqual({
      host: {
        kernel: 'Linux',
        machine: 'aarch64',
        cpus: null,
        memoryBytes: null,
        rootFreeBytes: null,
        tools: null,
      },
      dataRootFreeBytes: null,
    })
  })
})

describe('hostProbeScript on this machine (/bin/sh)', () => {
  const run = async (script: string) => {
    let out = ''
    const code = await new LocalCommandRunner().run(
      script,
      (_s, d) => (out += d.toString()),
      new AbortController().signal,
    )
    return { code, out }
  }

  it('reports this machine as Node sees it', async () => {
    const { code, out } = await run(hostProbeScript({ dataRoot: null, tools: true }))
    expect(code).toBe(0)
    const { host } = parseHostProbe(out)
    expect(host.kernel).toBe('Linux')
    expect(host.machine).toBe(process.arch === 'x64' ? 'x86_64' : host.machine)
    expect(host.cpus).toBe(availableParallelism())
    expect(host.memoryBytes).toBe(totalmem())
    expect(host.rootFreeBytes).toBeGreaterThan(0)
    expect(host.tools).toEqual(expect.arrayContaining(['bash']))
  })

  it('measures a data root whose path needs quoting', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ym-probe-')), `it's a "dir" $HOME`)
    mkdirSync(dir)
    const { out } = await run(hostProbeScript({ dataRoot: dir, tools: false }))
    expect(parseHostProbe(out).dataRootFreeBytes).toBeGreaterThan(0)
    expect(out).not.toContain('tool ')
  })
})

describe('probeNode', () => {
  const handle = (docker: Partial<Docker> | null, commands: CommandRunner, executor: 'docker' | 'shell') =>
    ({ node: node(executor), ssh: null, docker, commands }) as NodeHandle

  it('asks the engine, then measures its data root on the host', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ym-root-'))
    const docker = { info: () => Promise.resolve({ ...INFO, DockerRootDir: root }) }
    const facts = await probeNode(handle(docker, new LocalCommandRunner(), 'docker'))
    expect(facts.problems).toEqual([])
    expect(facts.engine).toMatchObject({ architecture: 'x86_64', dataRoot: root, labels: { gpu: 'yes' } })
    expect(facts.engine!.dataRootFreeBytes).toBeGreaterThan(0)
    expect(facts.host).toMatchObject({ kernel: 'Linux', tools: null })
  })

  it('keeps the host facts when the engine fails, and says why', async () => {
    const docker = { info: () => Promise.reject(new Error('connect ECONNREFUSED')) }
    const facts = await probeNode(handle(docker, new LocalCommandRunner(), 'docker'))
    expect(facts.engine).toBeNull()
    expect(facts.host?.kernel).toBe('Linux')
    expect(facts.problems).toEqual(['engine: docker info failed: connect ECONNREFUSED'])
  })

  // The host answers at once, from memory: a real shell could itself outlast a short limit on a
  // busy machine, and then there would be two problems instead of the engine's.
  const answering: CommandRunner = {
    run: (_c, out) => (out('stdout', Buffer.from('uname Linux x86_64\ncores 2\n')), Promise.resolve(0)),
  }
  /** Never answers: ends (as a killed command does, with no exit code) only when its signal aborts. */
  const hanging = (signals: AbortSignal[]): CommandRunner => ({
    run: (_c, _out, signal) => {
      signals.push(signal)
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(null)))
    },
  })

  it('gives up on an engine that hangs (a frozen dockerd)', async () => {
    let asked: AbortSignal | null = null
    const docker = {
      info: (opts: { abortSignal: AbortSignal }) =>
        new Promise((_, reject) => {
          asked = opts.abortSignal
          opts.abortSignal.addEventListener('abort', () => reject(opts.abortSignal.reason as Error))
        }),
    } as unknown as Partial<Docker>
    const facts = await probeNode(handle(docker, answering, 'docker'), { timeoutMs: 50 })
    expect(facts.problems).toEqual(['engine: docker info failed: no answer within 50 ms'])
    expect(asked!.reason).toMatchObject({ name: 'TimeoutError' })
    expect(facts.host?.kernel).toBe('Linux')
  })

  it('stops a host probe that hangs', async () => {
    // Whatever the time it takes, the probe ends only if it stops the command: the command never ends by itself.
    const signals: AbortSignal[] = []
    const facts = await probeNode(handle(null, hanging(signals), 'shell'), { timeoutMs: 100 })
    expect(facts).toMatchObject({ engine: null, host: null, problems: ['host: no answer within 100 ms'] })
    expect(signals).toHaveLength(1)
    expect(signals[0]!.reason).toMatchObject({ name: 'TimeoutError' })
  })

  it('looks for tools on shell nodes only', async () => {
    const facts = await probeNode(handle(null, new LocalCommandRunner(), 'shell'))
    expect(facts.host?.tools).toEqual(expect.arrayContaining(['bash']))
  })

  it('says so when the host answers with nothing usable', async () => {
    const mute: CommandRunner = {
      run: (_c, out) => (out('stderr', Buffer.from('sh: not found\n')), Promise.resolve(127)),
    }
    const facts = await probeNode(handle(null, mute, 'shell'))
    expect(facts.problems).toEqual(['host: the probe printed nothing usable (sh: not found)'])
  })
})
