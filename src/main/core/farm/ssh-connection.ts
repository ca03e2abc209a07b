/**
 * One verified SSH connection to a node (ssh2). Host keys are checked against known_hosts
 * before any credential is sent; failures become the named errors of farm-errors.ts.
 */
import { readFileSync } from 'node:fs'
import { Client, type ConnectConfig } from 'ssh2'
import {
  AuthenticationError,
  HostKeyMismatchError,
  NodeUnreachableError,
  UnknownHostKeyError,
} from './farm-errors'
import type { FarmNode } from './farm-model'
import { fingerprint, hostKeyAlgorithmsFor, type KnownHosts } from './known-hosts'

export interface SshConnectOptions {
  /** Give up on the handshake after this long. @default 10000 */
  timeoutMs?: number
  /** Keepalive probe interval; a node that misses 3 in a row is considered gone. @default 5000 */
  keepaliveMs?: number
}

export async function connectSsh(
  node: FarmNode,
  knownHosts: KnownHosts,
  opts: SshConnectOptions = {},
): Promise<Client> {
  const client = new Client()
  let keyProblem: Error | null = null

  const config: ConnectConfig = {
    host: node.host,
    port: node.port,
    username: node.user,
    readyTimeout: opts.timeoutMs ?? 10_000,
    keepaliveInterval: opts.keepaliveMs ?? 5_000,
    keepaliveCountMax: 3,
    algorithms: {
      serverHostKey: hostKeyAlgorithmsFor(knownHosts.keysFor(node.host, node.port)) as never,
    },
    hostVerifier: (key: Buffer) => {
      const verdict = knownHosts.verify(node.host, node.port, key)
      if (verdict.kind === 'trusted') return true
      const fp = fingerprint(key)
      keyProblem =
        verdict.kind === 'unknown'
          ? new UnknownHostKeyError(node, knownHosts.file, fp)
          : new HostKeyMismatchError(node, knownHosts.file, verdict.line, fp)
      return false
    },
  }
  if (node.identityFile) {
    try {
      config.privateKey = readFileSync(node.identityFile)
    } catch (e) {
      throw new AuthenticationError(
        node,
        `cannot read identityFile ${node.identityFile}: ${(e as Error).message}`,
      )
    }
  } else if (process.env.SSH_AUTH_SOCK) {
    config.agent = process.env.SSH_AUTH_SOCK
  } else {
    throw new AuthenticationError(
      node,
      'no identityFile is set and no ssh-agent is running (SSH_AUTH_SOCK is empty)',
    )
  }

  return new Promise<Client>((resolve, reject) => {
    const fail = (e: Error & { level?: string; code?: string }) => {
      client.removeAllListeners('ready')
      client.end()
      if (keyProblem) return reject(keyProblem)
      if (e.level === 'client-authentication')
        return reject(new AuthenticationError(node, 'the server refused the key'))
      if (/private key|passphrase|Unsupported key format/i.test(e.message)) {
        return reject(
          new AuthenticationError(
            node,
            `cannot use ${node.identityFile}: ${e.message} (for a passphrase-protected key, load it into ssh-agent)`,
          ),
        )
      }
      reject(new NodeUnreachableError(node, describeNetworkError(e)))
    }
    client.once('ready', () => {
      client.removeListener('error', fail)
      // Later errors (a dropped connection) surface as 'close' to whoever holds the client.
      client.on('error', () => {})
      resolve(client)
    })
    client.once('error', fail)
    try {
      client.connect(config)
    } catch (e) {
      fail(e as Error)
    }
  })
}

function describeNetworkError(e: Error & { code?: string }): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens on that port)'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve'
    case 'ETIMEDOUT':
      return 'the connection timed out'
  }
  if (/Timed out while waiting for handshake/.test(e.message)) return 'no SSH handshake within the time limit'
  return e.message
}
