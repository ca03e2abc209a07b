/**
 * One verified SSH connection to a node (ssh2). Host keys are checked against known_hosts
 * before any credential is sent; failures become the named errors of farm-errors.ts.
 */
import { readFileSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2'
import { AuthenticationError, NodeUnreachableError } from '../farm/farm-errors'
import type { FarmNode } from '../farm/farm-model'
import { hostKeyAlgorithmsFor, type HostKeyChecker } from './known-hosts'

export const KEEPALIVE_MS = 3_000
export const KEEPALIVE_COUNT = 3
/** How long after a node's last word its connection is given up: ssh2 fails it at the probe after the last allowed. */
export const LOST_AFTER_MS = KEEPALIVE_MS * (KEEPALIVE_COUNT + 1)

export interface SshConnectOptions {
  /** Give up on the handshake after this long. @default 10000 */
  timeoutMs?: number
  /**
   * Keepalive probe interval; a node silent through 3 probes and the interval after is gone:
   * with the default, 12 s after it last said anything, so a job on a lost node is noticed
   * within 15 s. Any traffic from the node resets the count (a busy link is never dropped).
   * @default 3000
   */
  keepaliveMs?: number
  /**
   * A stream already connected to the node's sshd, used instead of a TCP connection: a channel
   * of a jump node's connection (forwardTo). Host key and authentication are checked as usual.
   */
  sock?: Duplex
}

export async function connectSsh(
  node: FarmNode,
  knownHosts: HostKeyChecker,
  opts: SshConnectOptions = {},
): Promise<Client> {
  const client = new Client()
  let keyProblem: Error | null = null

  const config: ConnectConfig = {
    host: node.host,
    port: node.port,
    username: node.user,
    readyTimeout: opts.timeoutMs ?? 10_000,
    keepaliveInterval: opts.keepaliveMs ?? KEEPALIVE_MS,
    keepaliveCountMax: KEEPALIVE_COUNT,
    ...(opts.sock ? { sock: opts.sock } : {}),
    algorithms: {
      serverHostKey: hostKeyAlgorithmsFor(knownHosts.keysFor(node.host, node.port)) as never,
    },
    hostVerifier: (key: Buffer) => {
      keyProblem = knownHosts.check(node, key)
      return keyProblem === null
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
      // ssh2 may report more after the first error (after a handshake timeout, "Connection lost
      // before handshake" as the socket closes); unheard, that would be thrown in the process.
      client.on('error', () => {})
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

/**
 * A TCP connection from `jump` (the jump node's open connection) to `node`'s sshd, as OpenSSH's
 * ProxyJump does (a direct-tcpip channel): pass it as `sock` to connectSsh. The address is
 * resolved and dialled by the jump host, so it may be one only the jump host can reach.
 */
export function forwardTo(
  jump: Client,
  jumpName: string,
  node: FarmNode,
  timeoutMs = 10_000,
): Promise<ClientChannel> {
  return new Promise<ClientChannel>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new NodeUnreachableError(
          node,
          `the jump host ${jumpName} did not open a connection to ${node.host}:${node.port} within ${timeoutMs} ms`,
        ),
      )
    }, timeoutMs)
    try {
      jump.forwardOut('127.0.0.1', 0, node.host, node.port, (err, channel) => {
        clearTimeout(timer)
        if (err)
          return reject(
            new NodeUnreachableError(
              node,
              `the jump host ${jumpName} could not open a connection to ${node.host}:${node.port}: ` +
                describeForwardError(err),
            ),
          )
        resolve(channel)
      })
    } catch (e) {
      // ssh2 throws at once when the jump connection is already gone.
      clearTimeout(timer)
      reject(
        new NodeUnreachableError(
          node,
          `the connection to its jump host ${jumpName} is closed (${(e as Error).message})`,
        ),
      )
    }
  })
}

/** RFC 4254's channel open failure reason codes, in the words OpenSSH's ssh prints. */
const OPEN_FAILURE_REASONS: Record<number, string> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
}

/** ssh2's channel-open failures, in words; the reason after the prefix is the jump host's own. */
function describeForwardError(e: Error & { reason?: number | string }): string {
  let m = e.message.replace(/^\(SSH\) Channel open failure: ?/, '')
  // The reason code says what happened when the description does not: OpenSSH's sshd sends only
  // "open failed" when forwarding is not allowed, other servers may send nothing.
  const reason = typeof e.reason === 'number' ? OPEN_FAILURE_REASONS[e.reason] : undefined
  if (reason && (m === '' || m === 'open failed')) m = m ? `${reason}: ${m}` : reason
  if (/administratively prohibited/i.test(m))
    return `${m} (its sshd does not allow TCP forwarding: set AllowTcpForwarding yes there)`
  if (/connect failed|Connection refused/i.test(m))
    return `${m} (nothing listens there, seen from the jump host)`
  return m
}

export function describeNetworkError(e: Error & { code?: string }): string {
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
