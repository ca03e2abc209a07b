import { describe, expect, it } from 'vitest'
import {
  AuthenticationError,
  EngineUnavailableError,
  HostKeyMismatchError,
  NodeUnreachableError,
  UnknownHostKeyError,
} from './farm-errors'
import type { FarmNode } from './farm-model'

const ssh: FarmNode = {
  name: 'n1',
  host: '10.0.0.5',
  port: 22,
  user: 'ci',
  identityFile: '/home/me/.ssh/ci',
  executor: 'docker',
  labels: ['self-hosted'],
  slots: 1,
  defaultImage: null,
  source: null,
}
const onPort = { ...ssh, port: 2222 }
const agent = { ...ssh, identityFile: null }
const local: FarmNode = { ...ssh, name: 'here', host: 'local', user: '', port: 0, identityFile: null }

describe('farm errors say what happened and what to do', () => {
  it('NodeUnreachableError suggests the ssh command to try', () => {
    const e = new NodeUnreachableError(onPort, 'connection refused')
    expect(e.name).toBe('NodeUnreachableError')
    expect(e.reason).toBe('connection refused')
    expect(e.message).toBe(
      'cannot reach node n1 (ci@10.0.0.5:2222): connection refused. ' +
        'Check that the machine is up and sshd listens there (try: ssh -p 2222 ci@10.0.0.5).',
    )
  })

  it('HostKeyMismatchError names the known_hosts line and the ssh-keygen -R pattern', () => {
    const e = new HostKeyMismatchError(ssh, '/k/known_hosts', 7, 'SHA256:abc')
    expect(e.name).toBe('HostKeyMismatchError')
    expect(e.message).toContain('does not match /k/known_hosts:7 (the node offered SHA256:abc)')
    expect(e.message).toContain("`ssh-keygen -R '10.0.0.5' -f /k/known_hosts`")
    expect(new HostKeyMismatchError(onPort, '/k', 1, 'f').message).toContain(
      "ssh-keygen -R '[10.0.0.5]:2222'",
    )
  })

  it('UnknownHostKeyError gives the fingerprint and the ssh-keyscan command', () => {
    const e = new UnknownHostKeyError(ssh, '/k/known_hosts', 'SHA256:abc')
    expect(e.name).toBe('UnknownHostKeyError')
    expect(e.message).toContain('is not in /k/known_hosts (it offered SHA256:abc)')
    expect(e.message).toContain('`ssh-keyscan 10.0.0.5 >> /k/known_hosts`')
    expect(new UnknownHostKeyError(onPort, '/k', 'f').message).toContain(
      '`ssh-keyscan -p 2222 10.0.0.5 >> /k`',
    )
  })

  it('AuthenticationError points at the key or at the agent, never at key contents', () => {
    const withKey = new AuthenticationError(ssh, 'all methods failed')
    expect(withKey.name).toBe('AuthenticationError')
    expect(withKey.message).toContain('public key of /home/me/.ssh/ci is in ~ci/.ssh/authorized_keys')
    expect(new AuthenticationError(agent, 'x').message).toContain(
      'No identityFile is set, so the ssh-agent was asked',
    )
  })

  it('EngineUnavailableError suggests the shell executor', () => {
    const e = new EngineUnavailableError(ssh, 'timeout')
    expect(e.name).toBe('EngineUnavailableError')
    expect(e.message).toContain('the Docker engine on node n1 (ci@10.0.0.5:22) did not answer: timeout')
    expect(e.message).toContain('that ci may use it')
    expect(new EngineUnavailableError(local, 'x').message).toContain('that the user may use it')
  })
})
