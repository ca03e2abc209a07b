import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { describe, expect, it, vi } from 'vitest'
import { LocalCommandRunner, type CommandRunner } from '../../executor/command-runner'
import {
  AuthenticationError,
  EngineUnavailableError,
  HostKeyMismatchError,
  NodeUnreachableError,
} from '../farm-errors'
import type { FarmNode } from '../farm-model'
import {
  causeOf,
  cpuPercent,
  DEFAULT_THRESHOLDS,
  healthScript,
  judgeHealth,
  parseHealth,
  probeHealth,
  thresholdsFor,
  type HealthProbeResult,
  type HealthSample,
} from './health-probe'
import type { NodeHandle } from '../node-handle'

const node: FarmNode = {
  name: 'n1',
  host: 'h',
  port: 22,
  user: 'u',
  identityFile: null,
  executor: 'docker',
  labels: [],
  slots: 1,
  defaultImage: null,
  source: null,
}

const LINUX = `nowns 1700000000123456789
cores 4
load 1.50
cpu cpu  100 0 50 800 50 0 0 0 0 0
mem 16000000 4000000 
dfroot /dev/sda1 100000000 60000000 40000000 60% /
dfdata /dev/sdb1 200000000 190000000 1000000 99% /var/lib/docker
`

describe('parseHealth', () => {
  it('reads a Linux answer', () => {
    expect(parseHealth(LINUX)).toEqual({
      nodeClockMs: 1700000000123,
      cores: 4,
      load1: 1.5,
      cpu: { busy: 150, total: 1000 },
      memUsedPct: 75,
      rootFreeBytes: 40000000 * 1024,
      dataFreeBytes: 1000000 * 1024,
      jobs: null,
    })
  })

  it('reads a macOS answer (whole seconds, sysctl load, no /proc)', () => {
    expect(parseHealth('now 1700000000000\ncores 8\nload 2.25\ndfroot /dev/disk1 1 1 5 50% /\n')).toEqual({
      nodeClockMs: 1700000000000,
      cores: 8,
      load1: 2.25,
      cpu: null,
      memUsedPct: null,
      rootFreeBytes: 5 * 1024,
      dataFreeBytes: null,
      jobs: null,
    })
  })

  it('leaves out what it cannot read', () => {
    expect(parseHealth('nowns N\ncores x\nload\ncpu cpu a b\nmem\ndfroot\n')).toMatchObject({
      nodeClockMs: null,
      cores: null,
      load1: null,
      cpu: null,
      memUsedPct: null,
      rootFreeBytes: null,
    })
  })

  it('runs under sh here and parses what it prints', () => {
    const t0 = Date.now()
    const out = execFileSync('sh', ['-c', healthScript('/')], { encoding: 'utf8' })
    const t1 = Date.now()
    const p = parseHealth(out)
    // Read while the script ran, however long that took.
    expect(p.nodeClockMs).toBeGreaterThanOrEqual(t0)
    expect(p.nodeClockMs).toBeLessThanOrEqual(t1)
    expect(p.cores).toBeGreaterThan(0)
    expect(p.load1).toBeGreaterThanOrEqual(0)
    expect(p.cpu!.total).toBeGreaterThan(0)
    expect(p.memUsedPct).toBeGreaterThan(0)
    expect(p.rootFreeBytes).toBeGreaterThan(0)
    expect(p.dataFreeBytes).toBeGreaterThan(0)
    // The data root given (/) is what dfdata measured: the same file system and mount point as
    // dfroot. (Not the same free bytes: two readings of a live disk may differ.)
    const dfLine = (key: string) =>
      out
        .split('\n')
        .find((l) => l.startsWith(`${key} `))!
        .split(/\s+/)
    const [root, data] = [dfLine('dfroot'), dfLine('dfdata')]
    expect([data[1], data.at(-1)]).toEqual([root[1], root.at(-1)])
    expect(root.at(-1)).toBe('/')
    expect(p.jobs).toBeNull()
  })

  it("counts the shell executor's job workspaces on shell nodes, and nothing else in TMPDIR", () => {
    const tmp = mkdtempSync(join(tmpdir(), 'probe-'))
    try {
      const count = () =>
        parseHealth(
          execFileSync('sh', ['-c', healthScript(null, true)], {
            encoding: 'utf8',
            env: { ...process.env, TMPDIR: tmp },
          }),
        ).jobs
      expect(count()).toBe(0)
      mkdirSync(join(tmp, 'yardmaster-12-build-Ab3dEf'))
      mkdirSync(join(tmp, 'yardmaster-13-test_1-Zz9yXw'))
      mkdirSync(join(tmp, 'yardmaster-test-data'))
      expect(count()).toBe(2)
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe('cpuPercent', () => {
  it('is the busy share between two readings', () => {
    expect(cpuPercent({ busy: 150, total: 1000 }, { busy: 450, total: 1400 })).toBe(75)
    expect(cpuPercent(null, { busy: 1, total: 2 })).toBeNull()
    expect(cpuPercent({ busy: 1, total: 2 }, { busy: 1, total: 2 })).toBeNull()
  })
})

describe('judgeHealth', () => {
  const fine: HealthSample = {
    at: 0,
    load1: 1,
    cpus: 4,
    cpuPct: 10,
    memUsedPct: 50,
    rootFreeBytes: 100 * 1024 ** 3,
    dataFreeBytes: 100 * 1024 ** 3,
    containersOurs: 0,
    containersOthers: 0,
    engineMs: 5,
    rttMs: 3,
    skewMs: 100,
  }

  it('finds nothing wrong with a healthy node', () => {
    expect(judgeHealth(fine)).toEqual([])
  })

  it('judges by the limits it is given', () => {
    const busy = { ...fine, load1: 4.2, cpus: 2 }
    expect(judgeHealth(busy)).toEqual(['high load (4.2 on 2 cores)'])
    expect(judgeHealth(busy, { ...DEFAULT_THRESHOLDS, loadPerCore: 1000 })).toEqual([])
    expect(judgeHealth(fine, { ...DEFAULT_THRESHOLDS, diskFreeBytes: 200 * 1024 ** 3 })).toEqual([
      'low disk on / (100.0 GiB free)',
      "low disk on the engine's data root (100.0 GiB free)",
    ])
  })

  it('names each problem with its figure', () => {
    expect(
      judgeHealth(
        {
          ...fine,
          load1: 9,
          memUsedPct: 97,
          rootFreeBytes: 1024 ** 3,
          dataFreeBytes: 0.5 * 1024 ** 3,
          engineMs: 2500,
          skewMs: -45_000,
        },
        undefined,
        '/var/lib/docker',
      ),
    ).toEqual([
      'high load (9 on 4 cores)',
      'low memory (97% used)',
      'low disk on / (1.0 GiB free)',
      "low disk on the engine's data root /var/lib/docker (0.5 GiB free)",
      'slow engine (ping 2500 ms)',
      'clock skew (the node is 45 s behind)',
    ])
  })
})

describe('thresholdsFor', () => {
  it("takes the node's limits, then the farm's, then the base", () => {
    expect(thresholdsFor({}, {})).toEqual(DEFAULT_THRESHOLDS)
    expect(
      thresholdsFor(
        { health: { loadPerCore: 1000, diskFreeBytes: 5 * 1024 ** 3 } },
        { health: { loadPerCore: 4, clockSkewMs: 60_000 } },
        { ...DEFAULT_THRESHOLDS, engineSlowMs: 100, loadPerCore: 3 },
      ),
    ).toEqual({
      loadPerCore: 4,
      memoryUsedPct: 95,
      diskFreeBytes: 5 * 1024 ** 3,
      engineSlowMs: 100,
      clockSkewMs: 60_000,
    })
    // A limit left undefined (a farm built in code) does not hide the one under it.
    expect(
      thresholdsFor({ health: { loadPerCore: 8 } }, { health: { loadPerCore: undefined } }).loadPerCore,
    ).toBe(8)
    expect(DEFAULT_THRESHOLDS.loadPerCore).toBe(2)
  })
})

describe('probeHealth', () => {
  const handle = (commands: CommandRunner, docker: unknown = null): NodeHandle => ({
    node,
    ssh: null,
    docker: docker as NodeHandle['docker'],
    commands,
  })
  const engine = (ping: () => Promise<unknown>) => ({
    ping,
    listContainers: () =>
      Promise.resolve([{ Labels: { 'io.yardmaster.managed': 'true' } }, { Labels: {} }, { Labels: null }]),
  })

  it('measures this machine through a local runner, with the engine counts', async () => {
    const r = await probeHealth(
      handle(
        new LocalCommandRunner(),
        engine(() => Promise.resolve('OK')),
      ),
      {
        dataRoot: '/',
        previousCpu: { busy: 0, total: 1 },
        // A busy machine may take seconds to start a shell: this test is not about the limit.
        timeoutMs: 60_000,
      },
    )
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.sample).toMatchObject({ containersOurs: 1, containersOthers: 2 })
    // Same clock: the node's reading falls within the round trip, so it is off the midpoint by
    // at most half of it (and a millisecond of rounding), however long the round trip took.
    expect(Math.abs(r.sample.skewMs!)).toBeLessThanOrEqual(r.sample.rttMs! / 2 + 2)
    expect(r.sample.engineMs).toBeGreaterThanOrEqual(0)
    expect(r.sample.cpuPct).toBeGreaterThanOrEqual(0)
    expect(r.cpu!.total).toBeGreaterThan(1)
  })

  it('says the node did not answer when the command hangs, at the limit and not before', async () => {
    vi.useFakeTimers()
    try {
      const hang: CommandRunner = { run: () => new Promise(() => {}) }
      let r: HealthProbeResult | null = null
      void probeHealth(handle(hang), { timeoutMs: 100 }).then((x) => (r = x))
      await vi.advanceTimersByTimeAsync(99)
      expect(r).toBeNull()
      await vi.advanceTimersByTimeAsync(1)
      expect(r).toEqual({ ok: false, cause: 'network', reason: 'no answer within 100 ms' })
    } finally {
      vi.useRealTimers()
    }
  })

  it('passes on why the connection failed, with its kind', async () => {
    const refusing: CommandRunner = {
      run: () => Promise.reject(new NodeUnreachableError(node, 'connection refused')),
    }
    expect(await probeHealth(handle(refusing))).toMatchObject({
      ok: false,
      cause: 'network',
      reason: expect.stringContaining('connection refused'),
    })
  })

  it('reports an engine that does not answer while SSH does', async () => {
    // The host answers at once, from memory: a real shell on a busy machine could outlast the
    // limit too, and then the probe would rightly blame the connection.
    const answering: CommandRunner = {
      run: (_c, out) => (out('stdout', Buffer.from(LINUX)), Promise.resolve(0)),
    }
    vi.useFakeTimers()
    try {
      let r: HealthProbeResult | null = null
      void probeHealth(
        handle(
          answering,
          engine(() => new Promise(() => {})),
        ),
        { timeoutMs: 200 },
      ).then((x) => (r = x))
      await vi.advanceTimersByTimeAsync(199)
      expect(r).toBeNull()
      await vi.advanceTimersByTimeAsync(1)
      expect(r).toEqual({
        ok: false,
        cause: 'engine',
        reason: 'SSH answers but the Docker engine does not: no answer within 200 ms',
      })
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('causeOf', () => {
  it('tells host key, credential, engine and network trouble apart', () => {
    expect(causeOf(new HostKeyMismatchError(node, 'kh', 1, 'fp'))).toBe('host-key')
    expect(causeOf(new AuthenticationError(node, 'x'))).toBe('auth')
    expect(causeOf(new EngineUnavailableError(node, 'x'))).toBe('engine')
    expect(causeOf(new NodeUnreachableError(node, 'x'))).toBe('network')
    expect(causeOf(null)).toBe('network')
  })
})
