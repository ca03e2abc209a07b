/**
 * The Docker API over an SSH connection, against a real SSH server in this process whose
 * `docker system dial-stdio` is a pipe to a small HTTP server playing the engine: channels per
 * HTTP connection, keep-alive and idle channels, dial-stdio failures with their stderr.
 * The lab's dockerd: test/integration.
 */
import { join } from 'node:path'
import { inspect } from 'node:util'
import type { Client } from 'ssh2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { KnownHosts } from './known-hosts'
import { connectSsh } from './ssh-connection'
import { dockerOverSsh, localDocker } from './docker-over-ssh'
import {
  dialStdio,
  ENGINE_VERSION as VERSION,
  startEngine,
  type FakeEngine as Engine,
} from '../../../../test/support/docker-engine'
import { startSshServer, type ExecRequest, type TestSshServer } from '../../../../test/support/ssh-server'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  vi.unstubAllEnvs()
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function setup(onExec?: (engine: Engine) => (req: ExecRequest) => void) {
  const engine = await startEngine()
  cleanup.push(() => engine.close())
  const sshd: TestSshServer = await startSshServer({ onExec: (onExec ?? dialStdio)(engine) })
  cleanup.push(() => sshd.close())
  const ssh: Client = await connectSsh(sshd.node('n1'), KnownHosts.parse('kh', sshd.knownHosts()))
  cleanup.push(() => ssh.end())
  return { engine, sshd, ssh, docker: dockerOverSsh(ssh) }
}

/** A request to /slow: held by the engine until released. */
function slow(docker: ReturnType<typeof dockerOverSsh>, i: number): Promise<unknown> {
  return new Promise((resolve, reject) =>
    docker.modem.dial({ path: `/slow?i=${i}`, method: 'GET', statusCodes: { 200: true } }, (err, data) =>
      err ? reject(err) : resolve(data),
    ),
  )
}

describe('dockerOverSsh', () => {
  it('talks to the engine through docker system dial-stdio on the node', async () => {
    const { engine, sshd, docker } = await setup()
    expect(await docker.version()).toMatchObject(VERSION)
    expect(sshd.sessions.commands).toEqual(['docker system dial-stdio'])
    expect(engine.requests).toEqual(['GET /version'])
  })

  it('keeps an idle channel for the next request instead of opening another', async () => {
    const { sshd, docker } = await setup()
    for (let i = 0; i < 3; i++) await docker.version()
    expect(await docker.ping()).toEqual(Buffer.from('OK'))
    expect(sshd.sessions.commands).toHaveLength(1)
  })

  it("after a burst keeps 4 idle channels for reuse and closes the rest (each holds one of sshd's sessions)", async () => {
    const { engine, sshd, docker } = await setup()
    const all = Promise.all(Array.from({ length: 6 }, (_, i) => slow(docker, i)))
    await vi.waitFor(() => expect(engine.held).toHaveLength(6))
    expect(sshd.sessions.open).toBe(6)
    engine.release()
    expect(await all).toHaveLength(6)
    await vi.waitFor(() => expect(sshd.sessions.open).toBe(4))
    // The next requests take the idle channels: no new exec.
    await Promise.all([docker.version(), docker.version(), docker.ping()])
    expect(sshd.sessions.commands).toHaveLength(6)
  })

  it("keeps dial-stdio's stderr out of the API stream", async () => {
    const { docker } = await setup((engine) => {
      const dial = dialStdio(engine)
      return (req) => {
        req.channel.stderr.write('WARNING: the docker CLI is older than the engine\n')
        dial(req)
      }
    })
    expect(await docker.version()).toMatchObject(VERSION)
  })

  it('a dial-stdio that fails says so with its exit code and what it printed (the engine is down)', async () => {
    const { docker } = await setup(() => ({ channel }) => {
      channel.stderr.write(
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n',
      )
      channel.exit(1)
      channel.end()
    })
    await expect(docker.version()).rejects.toThrow(
      'docker system dial-stdio exited 1: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. ' +
        'Is the docker daemon running?',
    )
  })

  it('keeps the end of a long stderr, and says when there was none', async () => {
    let noisy = true
    const { docker } = await setup(() => ({ channel }) => {
      if (noisy) channel.stderr.write(`${'progress '.repeat(1000)}\nerror: permission denied\n`)
      channel.exit(126)
      channel.end()
    })
    const err = await docker.version().catch((e: Error) => e)
    expect((err as Error).message).toMatch(
      /^docker system dial-stdio exited 126: [a-z ]+\s+error: permission denied$/,
    )
    expect((err as Error).message.length).toBeLessThanOrEqual(
      'docker system dial-stdio exited 126: '.length + 2000,
    )
    noisy = false
    await expect(docker.version()).rejects.toThrow('docker system dial-stdio exited 126: no output')
  })

  it('an exec the server refuses fails the request with the SSH error', async () => {
    const engine = await startEngine()
    cleanup.push(() => engine.close())
    const sshd = await startSshServer({ refuseExec: true })
    cleanup.push(() => sshd.close())
    const ssh = await connectSsh(sshd.node('n1'), KnownHosts.parse('kh', sshd.knownHosts()))
    cleanup.push(() => ssh.end())
    await expect(dockerOverSsh(ssh).version()).rejects.toThrow(/Unable to exec/)
    expect(engine.requests).toEqual([])
  })

  it('prints its agent by name, not the whole SSH client (docker-modem inspects it on every request)', async () => {
    const { docker } = await setup()
    const agent = (docker.modem as unknown as { agent: object }).agent
    expect(inspect(agent)).toBe('DialStdioAgent')
    expect(inspect({ agent }, { depth: 5 })).toBe('{ agent: DialStdioAgent }')
  })
})

describe('localDocker', () => {
  it("reaches this machine's engine on DOCKER_HOST's socket, or the one given", async () => {
    const sshd = await startSshServer()
    cleanup.push(() => sshd.close())
    const path = join(sshd.dir, 'docker.sock')
    const engine = await startEngine((s) => new Promise((resolve) => s.listen(path, resolve)))
    cleanup.push(() => engine.close())
    vi.stubEnv('DOCKER_HOST', `unix://${path}`)
    expect(await localDocker().version()).toMatchObject(VERSION)
    vi.stubEnv('DOCKER_HOST', 'unix:///nowhere/docker.sock')
    expect(await localDocker(path).ping()).toEqual(Buffer.from('OK'))
    expect(engine.requests).toEqual(['GET /version', 'GET /_ping'])
  })

  it('uses /var/run/docker.sock when DOCKER_HOST is not set', () => {
    vi.stubEnv('DOCKER_HOST', '')
    expect((localDocker().modem as unknown as { socketPath: string }).socketPath).toBe('/var/run/docker.sock')
  })
})
