/**
 * testConnection without a network: SSH and the engine are mocked (what is timed, what is closed,
 * how failures read); a local shell node runs for real. The lab integration test times real nodes.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FarmNode } from './farm-model'
import { farmNode } from '../../../../test/support/farm-node'

type EngineCall = (opts: { abortSignal: AbortSignal }) => Promise<unknown>
const engine = { version: vi.fn<EngineCall>(), ping: vi.fn<EngineCall>() }
vi.mock('../transport/docker-over-ssh', () => ({ dockerOverSsh: () => engine, localDocker: () => engine }))
const end = vi.fn()
const exec = (_cmd: string, cb: (err: undefined, ch: EventEmitter & { stderr: EventEmitter }) => void) => {
  const ch = Object.assign(new EventEmitter(), { stderr: new EventEmitter(), end: () => {} })
  cb(undefined, ch)
  setImmediate(() => ch.emit('close', 0))
}
const connectSsh = vi.fn((..._args: unknown[]) => Promise.resolve({ end, exec }))
vi.mock('../transport/ssh-connection', () => ({ connectSsh: (...args: unknown[]) => connectSsh(...args) }))

const { testConnection, median } = await import('./connection-test')
const { KnownHosts } = await import('../transport/known-hosts')
const { EngineUnavailableError, NodeUnreachableError } = await import('./farm-errors')

const kh = KnownHosts.parse('/k', '')
const node = (over: Partial<FarmNode>): FarmNode => farmNode('n1', { host: '10.0.0.1', ...over })

afterEach(() => {
  engine.version.mockReset()
  engine.ping.mockReset()
  end.mockReset()
  connectSsh.mockClear()
})

describe('testConnection', () => {
  it('times the handshake, the first engine request and round trips, then closes its connection', async () => {
    engine.version.mockResolvedValue({ Version: '20.10.24', ApiVersion: '1.41' })
    engine.ping.mockResolvedValue('OK')
    const r = await testConnection(node({}), kh, { samples: 3, timeoutMs: 1234 })
    expect(r).toMatchObject({ node: 'n1', engineVersion: '20.10.24', apiVersion: '1.41', samples: 3 })
    expect(r.handshakeMs).toBeGreaterThanOrEqual(0)
    expect(r.firstRequestMs).toBeGreaterThanOrEqual(0)
    expect(r.roundTripMs).toBeGreaterThanOrEqual(0)
    expect(engine.ping).toHaveBeenCalledTimes(3)
    expect(connectSsh.mock.calls[0]![2]).toEqual({ timeoutMs: 1234 })
    expect(end).toHaveBeenCalledTimes(1)
  })

  it('passes an unreachable node through as it is, with nothing to close', async () => {
    const n = node({})
    connectSsh.mockRejectedValueOnce(new NodeUnreachableError(n, 'connection refused'))
    await expect(testConnection(n, kh)).rejects.toBeInstanceOf(NodeUnreachableError)
    expect(end).not.toHaveBeenCalled()
  })

  it('says the engine did not answer in time (a frozen dockerd), and still closes the connection', async () => {
    engine.version.mockImplementation(
      ({ abortSignal }) =>
        new Promise((_, reject) =>
          abortSignal.addEventListener('abort', () => reject(abortSignal.reason as Error)),
        ),
    )
    const err = await testConnection(node({}), kh, { timeoutMs: 30 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineUnavailableError)
    expect((err as Error).message).toContain('did not answer: no answer within 30 ms')
    expect(end).toHaveBeenCalledTimes(1)
  })

  it('reports an engine error in its own words', async () => {
    engine.version.mockRejectedValue(new Error('docker system dial-stdio exited 1: permission denied'))
    await expect(testConnection(node({}), kh)).rejects.toThrow(
      'did not answer: docker system dial-stdio exited 1: permission denied',
    )
  })

  it('times `true` round trips on a shell node over SSH', async () => {
    const r = await testConnection(node({ executor: 'shell' }), kh, { samples: 2 })
    expect(r).toMatchObject({ engineVersion: null, apiVersion: null, firstRequestMs: null, samples: 2 })
    expect(engine.version).not.toHaveBeenCalled()
  })

  it('runs a local shell node for real, without SSH', async () => {
    const r = await testConnection(node({ host: 'local', executor: 'shell' }), kh, { samples: 2 })
    expect(r.handshakeMs).toBeNull()
    expect(r.roundTripMs).toBeGreaterThan(0)
    expect(connectSsh).not.toHaveBeenCalled()
  })

  it('asks the local engine for a local docker node', async () => {
    engine.version.mockResolvedValue({ Version: '27.0.1', ApiVersion: '1.46' })
    engine.ping.mockResolvedValue('OK')
    const r = await testConnection(node({ host: 'local' }), kh, { samples: 1 })
    expect(r).toMatchObject({ handshakeMs: null, engineVersion: '27.0.1', apiVersion: '1.46' })
    expect(connectSsh).not.toHaveBeenCalled()
  })
})

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([5, 1, 3])).toBe(3)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([7])).toBe(7)
    expect(median([])).toBeNaN()
  })
})
