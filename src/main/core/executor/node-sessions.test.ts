/**
 * NodeSessions without a network: this machine for real, SSH nodes through a mocked connectSsh
 * (what the session does with the connection). Real SSH is covered by the lab integration tests.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Farm, FarmNode } from '../farm/farm-model'
import { localNode } from '../../../../test/support/farm-node'

const ping = vi.fn<() => Promise<unknown>>()
const remotePing = vi.fn<() => Promise<unknown>>()
vi.mock('../transport/docker-over-ssh', () => ({
  localDocker: () => ({ ping }),
  dockerOverSsh: () => ({ ping: remotePing }),
}))
const end = vi.fn()
/** Commands run over the fake connection; each prints a path and exits 0. */
const execed: string[] = []
type ExecCallback = (err: undefined, ch: EventEmitter & { stderr: EventEmitter; end: () => void }) => void
const exec = (command: string, a: object | ExecCallback, b?: ExecCallback) => {
  const cb = (typeof a === 'function' ? a : b)!
  execed.push(command)
  const ch = Object.assign(new EventEmitter(), { stderr: new EventEmitter(), end: () => {} })
  cb(undefined, ch)
  setImmediate(() => {
    ch.emit('data', Buffer.from('/remote/ws\n'))
    ch.emit('close', 0)
  })
}
/** A fake ssh2 Client: `end` is recorded and closes it, as the real one does. */
function fakeClient() {
  const client: EventEmitter & { end: () => void; exec: typeof exec } = Object.assign(new EventEmitter(), {
    exec,
    end: () => {
      end()
      setImmediate(() => client.emit('close'))
    },
  })
  return client
}
const connectSsh = vi.fn((..._args: unknown[]) => Promise.resolve(fakeClient()))
/** A jump host's channel: what connectSsh is then given as `sock`. */
const forwardTo = vi.fn((..._args: unknown[]) => Promise.resolve({ channel: true }))
vi.mock('../transport/ssh-connection', () => ({
  connectSsh: (...args: unknown[]) => connectSsh(...args),
  forwardTo: (...args: unknown[]) => forwardTo(...args),
}))

const { NodeSessions, withTimeout } = await import('./node-sessions')
const { ShellExecutor } = await import('./shell-executor')
const { DockerExecutor } = await import('./docker-executor')
const { LocalCommandRunner, SshCommandRunner } = await import('./command-runner')
const { EngineUnavailableError, NodeUnreachableError } = await import('../farm/farm-errors')
const { HostTrust } = await import('../transport/host-trust')
const { SshPool } = await import('../transport/ssh-pool')
type Options = ConstructorParameters<typeof NodeSessions>[1]
/** Each test its own pool: the process's pool would carry connections from one test to the next. */
const sessionsOf = (f: Farm, o: Options = {}) => new NodeSessions(f, { pool: new SshPool(), ...o })

afterEach(() => {
  ping.mockReset()
  remotePing.mockReset()
  end.mockReset()
  connectSsh.mockClear()
  forwardTo.mockClear()
  execed.length = 0
})

const local = (name: string, executor: 'docker' | 'shell'): FarmNode => localNode(name, { executor })
const farm: Farm = { file: null, knownHosts: '/nowhere/known_hosts', nodes: [], platforms: {} }

describe('NodeSessions for this machine', () => {
  it('opens a local shell node without SSH or Docker', async () => {
    const sessions = sessionsOf(farm)
    const node = local('here', 'shell')
    const s = await sessions.open(node)
    expect(s.node).toBe(node)
    expect(s.executor).toBeInstanceOf(ShellExecutor)
    expect(ping).not.toHaveBeenCalled()
    expect(() => s.close()).not.toThrow()
  })

  it("exposes a local node's commands and engine for node operations, without SSH", async () => {
    const shell = await sessionsOf(farm).open(local('here', 'shell'))
    expect(shell).toMatchObject({ ssh: null, docker: null })
    expect(shell.commands).toBeInstanceOf(LocalCommandRunner)
    ping.mockResolvedValue('OK')
    const dock = await sessionsOf(farm).open(local('dock', 'docker'))
    expect(dock.ssh).toBeNull()
    expect(dock.docker).toMatchObject({ ping })
  })

  it('opens a node once and shares the session', async () => {
    const sessions = sessionsOf(farm)
    const node = local('here', 'shell')
    const [a, b] = await Promise.all([sessions.open(node), sessions.open(node)])
    expect(a).toBe(b)
    expect(await sessions.open(node)).toBe(a)
  })

  it('opens a local docker node when the engine answers', async () => {
    ping.mockResolvedValue('OK')
    const s = await sessionsOf(farm).open(local('dock', 'docker'))
    expect(s.executor).toBeInstanceOf(DockerExecutor)
  })

  it('says the engine is unavailable when it refuses, and retries on the next open', async () => {
    const sessions = sessionsOf(farm)
    const node = local('dock', 'docker')
    ping.mockRejectedValueOnce(new Error('connect ENOENT /var/run/docker.sock'))
    const err = await sessions.open(node).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineUnavailableError)
    expect((err as Error).message).toContain(
      'the Docker engine on node dock (this machine) did not answer: connect ENOENT /var/run/docker.sock',
    )
    ping.mockResolvedValueOnce('OK')
    await expect(sessions.open(node)).resolves.toMatchObject({ node })
  })

  it('gives up on an engine that does not answer in time', async () => {
    ping.mockReturnValue(new Promise(() => {}))
    const err = await sessionsOf(farm, { timeoutMs: 30 })
      .open(local('dock', 'docker'))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineUnavailableError)
    expect((err as Error).message).toContain('no answer from the local Docker socket')
  })

  it('closeAll closes every open session and forgets them', async () => {
    const sessions = sessionsOf(farm)
    ping.mockRejectedValue(new Error('down'))
    const shell = await sessions.open(local('here', 'shell'))
    const close = vi.spyOn(shell, 'close')
    await sessions.open(local('dock', 'docker')).catch(() => {})
    await sessions.closeAll()
    expect(close).toHaveBeenCalledTimes(1)
    expect(await sessions.open(local('here', 'shell'))).not.toBe(shell)
  })
})

describe('NodeSessions for SSH nodes (connectSsh mocked)', () => {
  const remote = (name: string, executor: 'docker' | 'shell'): FarmNode => ({
    ...local(name, executor),
    host: `${name}.lab`,
    port: 22,
    user: 'ci',
  })

  it('loads known_hosts once and passes it and the timeout to every connection', async () => {
    const sessions = sessionsOf(farm, { timeoutMs: 1234 })
    await sessions.open(remote('a', 'shell'))
    await sessions.open(remote('b', 'shell'))
    expect(connectSsh).toHaveBeenCalledTimes(2)
    const [node, kh, opts] = connectSsh.mock.calls[0]!
    expect(node).toMatchObject({ name: 'a' })
    expect(kh).toBeInstanceOf(HostTrust)
    // The farm's file first, then the user's; no store without a data directory.
    expect((kh as InstanceType<typeof HostTrust>).sources[0]).toBe('/nowhere/known_hosts')
    expect((kh as InstanceType<typeof HostTrust>).store).toBeNull()
    expect(opts).toEqual({ timeoutMs: 1234 })
    expect(connectSsh.mock.calls[1]![1]).toBe(kh)
  })

  it('runs a shell node through the SSH connection and ends it on close', async () => {
    const s = await sessionsOf(farm).open(remote('a', 'shell'))
    expect(s.executor).toBeInstanceOf(ShellExecutor)
    const job = await s.executor.prepare(
      { instance: 'i', runId: 3, jobKey: 'b', image: null },
      () => {},
      new AbortController().signal,
    )
    expect(job.workspace).toBe('/remote/ws/work')
    expect(execed).toEqual([
      'd=$(mktemp -d "${TMPDIR:-/tmp}/yardmaster-3-b-XXXXXX") && mkdir "$d/work" "$d/temp" && echo "$d"',
    ])
    s.close()
    expect(end).toHaveBeenCalledTimes(1)
  })

  it('opens a docker node when the remote engine answers', async () => {
    remotePing.mockResolvedValue('OK')
    const s = await sessionsOf(farm).open(remote('a', 'docker'))
    expect(s.executor).toBeInstanceOf(DockerExecutor)
    // Node operations ride the same connection and engine as the jobs.
    expect(s.ssh).toBe(await connectSsh.mock.results[0]!.value)
    expect(s.docker).toMatchObject({ ping: remotePing })
    expect(s.commands).toBeInstanceOf(SshCommandRunner)
    expect(end).not.toHaveBeenCalled()
  })

  it('closes the connection and says so when the remote engine does not answer', async () => {
    remotePing.mockReturnValue(new Promise(() => {}))
    const err = await sessionsOf(farm, { timeoutMs: 20 })
      .open(remote('a', 'docker'))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineUnavailableError)
    expect((err as Error).message).toContain('did not answer: no answer within 20 ms')
    expect(end).toHaveBeenCalledTimes(1)
  })

  it('passes connection errors through, and retries on the next open', async () => {
    const node = remote('a', 'shell')
    const sessions = sessionsOf(farm)
    connectSsh.mockRejectedValueOnce(new NodeUnreachableError(node, 'connection refused'))
    await expect(sessions.open(node)).rejects.toBeInstanceOf(NodeUnreachableError)
    await expect(sessions.open(node)).resolves.toMatchObject({ node })
    expect(connectSsh).toHaveBeenCalledTimes(2)
  })
})

describe('NodeSessions host keys', () => {
  it('uses the store in the data directory, accepting new keys only when asked', async () => {
    const node = { ...local('a', 'shell'), host: 'a.lab', port: 22, user: 'ci' }
    await sessionsOf(farm, { dataDir: '/data', acceptNewHostKeys: true }).open(node)
    const trust = connectSsh.mock.calls[0]![1] as InstanceType<typeof HostTrust>
    expect(trust.store).toBe('/data/known_hosts')
    expect(trust.acceptNew).toBe(true)
    const given = { keysFor: () => [], check: () => null }
    await sessionsOf(farm, { hostKeys: given }).open(node)
    expect(connectSsh.mock.calls[1]![1]).toBe(given)
  })
})

describe('NodeSessions through a jump host (connectSsh mocked)', () => {
  const ssh = (name: string, jump: string | null = null): FarmNode => ({
    ...local(name, 'shell'),
    host: `${name}.lab`,
    port: 22,
    user: 'ci',
    jump,
  })

  it("connects the inner node over a channel of the jump node's connection, opened once", async () => {
    const bastion = ssh('bastion')
    const farm2: Farm = { ...farm, nodes: [bastion, ssh('a', 'bastion'), ssh('b', 'bastion')] }
    const sessions = sessionsOf(farm2, { timeoutMs: 99 })
    await Promise.all([sessions.open(farm2.nodes[1]!), sessions.open(farm2.nodes[2]!)])
    // One connection to the bastion carries both; it runs no engine, it was never opened as a session.
    expect(connectSsh.mock.calls.map((c) => (c[0] as FarmNode).name)).toEqual(['bastion', 'a', 'b'])
    const bastionClient = await connectSsh.mock.results[0]!.value
    expect(forwardTo.mock.calls).toEqual([
      [bastionClient, 'bastion', farm2.nodes[1], 99],
      [bastionClient, 'bastion', farm2.nodes[2], 99],
    ])
    expect(connectSsh.mock.calls[1]![2]).toEqual({ timeoutMs: 99, sock: { channel: true } })
    await sessions.closeAll()
    // The inner connections close, then the bastion's, which carried them.
    await vi.waitFor(() => expect(end).toHaveBeenCalledTimes(3))
  })

  it("says when the jump host cannot be reached, with the jump host's reason", async () => {
    const bastion = ssh('bastion')
    const inner = ssh('a', 'bastion')
    connectSsh.mockRejectedValueOnce(new NodeUnreachableError(bastion, 'connection refused'))
    const err = await sessionsOf({ ...farm, nodes: [bastion, inner] })
      .open(inner)
      .catch((e: Error) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toMatch(
      /^cannot reach node a \(ci@a\.lab:22 via bastion\): its jump host bastion cannot be reached: cannot reach node bastion .*connection refused/,
    )
    expect(forwardTo).not.toHaveBeenCalled()
  })

  it('refuses a jump cycle built in code instead of waiting on itself', async () => {
    const a = ssh('a', 'b')
    const b = ssh('b', 'a')
    await expect(sessionsOf({ ...farm, nodes: [a, b] }).open(a)).rejects.toThrow(/jump hosts form a cycle/)
    expect(connectSsh).not.toHaveBeenCalled()
  })
})

describe('withTimeout', () => {
  it('resolves with the promise when it is in time', async () => {
    await expect(withTimeout(Promise.resolve(5), 1000, 'late')).resolves.toBe(5)
  })

  it('rejects with the message when it is late', async () => {
    await expect(withTimeout(new Promise(() => {}), 10, 'too late')).rejects.toThrow('too late')
  })

  it('passes rejections through', async () => {
    await expect(withTimeout(Promise.reject(new Error('boom')), 1000, 'late')).rejects.toThrow('boom')
  })
})
