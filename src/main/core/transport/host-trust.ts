/**
 * Which host keys Yardmaster trusts, and trust on first use.
 *
 * A host key is looked up in the farm file's `knownHosts`, in the user's ~/.ssh/known_hosts and
 * in Yardmaster's own store, `<data dir>/known_hosts` (OpenSSH's format, so `ssh-keygen -lf` and
 * `ssh-keygen -R` work on it). Only the store is ever written, and only by `record` (the
 * `node <name> trust` command, or --accept-new-host-keys), and only for a host none of them knows:
 *
 *   - a key on record anywhere, and nowhere a different one  -> trusted
 *   - a different key of that host on record anywhere         -> changed: refused, never overwritten
 *   - the key marked @revoked anywhere                        -> refused
 *   - nothing on record                                       -> unknown: refused with its fingerprint,
 *                                                                or recorded when new keys are accepted
 *
 * Files are read again on every check (they are small and connections are pooled), so a key
 * trusted by another process counts at once.
 */
import { appendFileSync, chmodSync, mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { Client } from 'ssh2'
import type { Duplex } from 'node:stream'
import type { HostKeyView } from '../../../shared/model'
import { HostKeyMismatchError, NodeUnreachableError, UnknownHostKeyError } from '../farm/farm-errors'
import { describeNode, type Farm, type FarmNode } from '../farm/farm-model'
import {
  fingerprint,
  hostKeyAlgorithmsFor,
  hostPattern,
  keyType,
  KnownHosts,
  type HostKeyChecker,
  type KnownKey,
} from './known-hosts'
import { describeNetworkError } from './ssh-connection'

/** Yardmaster's own known_hosts, in the data directory. */
export const TRUST_STORE_FILE = 'known_hosts'

export function trustStorePath(dataDir: string): string {
  return join(dataDir, TRUST_STORE_FILE)
}

export function userKnownHosts(): string {
  return join(homedir(), '.ssh', 'known_hosts')
}

export type TrustVerdict =
  | { kind: 'trusted'; file: string; line: number }
  | { kind: 'unknown' }
  | { kind: 'changed'; file: string; line: number; knownFingerprint: string }
  | { kind: 'revoked'; file: string; line: number }

export interface HostTrustOptions {
  /** known_hosts files read, never written (the farm's, the user's). Missing files are empty. */
  sources: readonly string[]
  /** Yardmaster's own store: read, and written by `record`. Null: nothing can be recorded. */
  store: string | null
  /** Record the key of a host nothing knows yet, instead of refusing it (--accept-new-host-keys). */
  acceptNew?: boolean
}

export class HostTrust implements HostKeyChecker {
  readonly sources: readonly string[]
  readonly store: string | null
  readonly acceptNew: boolean
  readonly id: string

  constructor(opts: HostTrustOptions) {
    this.store = opts.store
    // The store is a source too; each file once, in order.
    this.sources = [...new Set([...opts.sources, ...(opts.store ? [opts.store] : [])])]
    this.acceptNew = opts.acceptNew ?? false
    this.id = this.sources.join(',')
  }

  /**
   * The farm file's knownHosts, ~/.ssh/known_hosts, and the store in `dataDir` (when given).
   * @default userKnownHosts ~/.ssh/known_hosts
   */
  static forFarm(
    farm: Pick<Farm, 'knownHosts'>,
    opts: { dataDir?: string | null; acceptNew?: boolean; userKnownHosts?: string } = {},
  ): HostTrust {
    return new HostTrust({
      sources: [farm.knownHosts, opts.userKnownHosts ?? userKnownHosts()],
      store: opts.dataDir ? trustStorePath(opts.dataDir) : null,
      acceptNew: opts.acceptNew,
    })
  }

  keysFor(host: string, port: number): KnownKey[] {
    return this.load().flatMap((kh) => kh.keysFor(host, port))
  }

  verdict(host: string, port: number, key: Buffer): TrustVerdict {
    let trusted: TrustVerdict | null = null
    let changed: TrustVerdict | null = null
    for (const kh of this.load()) {
      const v = kh.verify(host, port, key)
      if (v.kind === 'revoked') return { kind: 'revoked', file: kh.file, line: v.line }
      if (v.kind === 'mismatch' && !changed) {
        const old = kh.keysFor(host, port).find((k) => k.line === v.line)
        changed = {
          kind: 'changed',
          file: kh.file,
          line: v.line,
          knownFingerprint: old ? fingerprint(old.key) : '?',
        }
      }
      if (v.kind === 'trusted' && !trusted) {
        const line = kh.keysFor(host, port).find((k) => k.key.equals(key))?.line ?? 0
        trusted = { kind: 'trusted', file: kh.file, line }
      }
    }
    // A different key anywhere outweighs the same key elsewhere: one of the records is wrong.
    return changed ?? trusted ?? { kind: 'unknown' }
  }

  check(node: FarmNode, key: Buffer): Error | null {
    const v = this.verdict(node.host, node.port, key)
    if (v.kind === 'trusted') return null
    if (v.kind === 'unknown' && this.acceptNew && this.store) {
      this.record(node, key)
      return null
    }
    return trustError(node, key, v, this)
  }

  /**
   * Adds `key` for the node's host to the store. Refuses (throws the error a connection would
   * get) unless the host is unknown: a changed key is never overwritten.
   */
  record(node: FarmNode, key: Buffer): { file: string } {
    if (!this.store)
      throw new Error('no data directory is set, so there is no Yardmaster known_hosts to record the key in')
    const v = this.verdict(node.host, node.port, key)
    if (v.kind === 'trusted') return { file: v.file }
    if (v.kind !== 'unknown') throw trustError(node, key, v, this)
    mkdirSync(dirname(this.store), { recursive: true })
    // One write with O_APPEND: processes recording at once cannot interleave inside a line.
    const line = `${hostPattern(node.host, node.port)} ${keyType(key)} ${key.toString('base64')}`
    appendFileSync(this.store, `${line}\n`, { mode: 0o600 })
    chmodSync(this.store, 0o600)
    return { file: this.store }
  }

  private load(): KnownHosts[] {
    return this.sources.map((f) => KnownHosts.load(f))
  }
}

/**
 * What `trust` shows: the key a node offers (scanned, not trusted) and what the known_hosts files
 * say of it. `file` is where the key is (trusted), where it would be recorded (unknown), or where
 * the other key is (changed, revoked).
 */
export function hostKeyView(node: FarmNode, trust: HostTrust, key: Buffer): HostKeyView {
  const v = trust.verdict(node.host, node.port, key)
  return {
    node: node.name,
    keyType: keyType(key),
    fingerprint: fingerprint(key),
    verdict: v.kind,
    file: v.kind === 'unknown' ? trust.store : v.file,
    line: v.kind === 'unknown' ? null : v.line,
    knownFingerprint: v.kind === 'changed' ? v.knownFingerprint : null,
    recorded: false,
  }
}

/** The key a node offers now is not the one the user was shown and accepted. */
export class FingerprintMismatchError extends Error {
  constructor(node: FarmNode, offered: Buffer, expected: string) {
    super(
      `node ${describeNode(node)} now offers the ${keyType(offered)} key ${fingerprint(offered)}, ` +
        `not ${expected}, the one that was shown: nothing was recorded. Look at the key it offers again ` +
        `and check that one with the machine's owner.`,
    )
    this.name = 'FingerprintMismatchError'
  }
}

/**
 * Trust on first use, once the user has seen `expectedFingerprint`: records `key` (the key the
 * node offers now) in the store only if it is still that key and no known_hosts knows the host.
 * A key already trusted is left as it is (`recorded: false`); a changed or revoked one is refused
 * with ChangedHostKeyError and the record is never overwritten. The view keeps the verdict found
 * before recording (`unknown`, with `recorded: true`).
 */
export function trustHostKey(
  node: FarmNode,
  trust: HostTrust,
  key: Buffer,
  expectedFingerprint: string,
): HostKeyView {
  if (fingerprint(key) !== expectedFingerprint.trim())
    throw new FingerprintMismatchError(node, key, expectedFingerprint.trim())
  const view = hostKeyView(node, trust, key)
  if (view.verdict === 'trusted') return view
  // Changed or revoked: record() refuses with the whole story. Unknown: recorded.
  const { file } = trust.record(node, key)
  return { ...view, recorded: true, file, line: null }
}

/** A host none of the known_hosts files knows: refused, with its fingerprint and how to accept it. */
export class UntrustedHostError extends UnknownHostKeyError {
  constructor(node: FarmNode, key: Buffer, trust: Pick<HostTrust, 'sources' | 'store'>) {
    super(node, trust.store ?? trust.sources[0] ?? 'known_hosts', fingerprint(key))
    this.name = 'UntrustedHostError'
    this.message =
      `node ${describeNode(node)} is not a known host: it offered the ${keyType(key)} key ${fingerprint(key)}, ` +
      `which none of ${trust.sources.join(', ')} holds. Nothing was sent to it. ` +
      `Check that fingerprint with the machine's owner (on the machine: \`ssh-keygen -lf /etc/ssh/ssh_host_${shortType(key)}_key.pub\`), ` +
      (trust.store
        ? `then trust it: \`yardmaster node ${node.name} trust\` (or pass --accept-new-host-keys to record every new host key once).`
        : `then add it to ${trust.sources[0] ?? 'known_hosts'}.`)
  }
}

/** A host whose key differs from the one on record: always refused, the record is kept. */
export class ChangedHostKeyError extends HostKeyMismatchError {
  constructor(
    node: FarmNode,
    key: Buffer,
    where: { file: string; line: number },
    readonly knownFingerprint: string,
    readonly revoked = false,
  ) {
    super(node, where.file, where.line, fingerprint(key))
    this.name = 'ChangedHostKeyError'
    const pattern = hostPattern(node.host, node.port)
    this.message = revoked
      ? `the host key of node ${describeNode(node)} (${fingerprint(key)}) is marked @revoked in ${where.file}:${where.line}. ` +
        `The connection was refused. The machine's key must be replaced; ask its owner.`
      : `the host key of node ${describeNode(node)} has CHANGED: it now offers the ${keyType(key)} key ${fingerprint(key)}, ` +
        `but ${where.file}:${where.line} holds ${knownFingerprint} for ${pattern}. The connection was refused and nothing was recorded. ` +
        `The machine may have been reinstalled or its keys regenerated, or someone may be intercepting the connection: ask its owner before going on. ` +
        `If the change is expected, remove the old key (\`ssh-keygen -R '${pattern}' -f ${where.file}\`), ` +
        `then check and record the new one with \`yardmaster node ${node.name} trust\`.`
  }
}

function trustError(
  node: FarmNode,
  key: Buffer,
  v: Exclude<TrustVerdict, { kind: 'trusted' }>,
  trust: HostTrust,
): Error {
  if (v.kind === 'unknown') return new UntrustedHostError(node, key, trust)
  if (v.kind === 'revoked') return new ChangedHostKeyError(node, key, v, fingerprint(key), true)
  return new ChangedHostKeyError(node, key, v, v.knownFingerprint)
}

/** `ed25519` for `ssh-ed25519`, as host key file names have it. */
function shortType(key: Buffer): string {
  const t = keyType(key)
  if (t.startsWith('ecdsa-')) return 'ecdsa'
  return t.replace(/^ssh-/, '')
}

export interface ScanOptions {
  /** A stream to the node's sshd (through its jump host); else a TCP connection. */
  sock?: Duplex
  /** @default 10000 */
  timeoutMs?: number
  /** Keys on record for the host, so the same algorithm is asked as connectSsh would. */
  known?: KnownKey[]
}

/**
 * The host key a node offers, without trusting it and without authenticating: the key exchange
 * is run up to the host key and then abandoned (what `ssh-keyscan` does).
 */
export function scanHostKey(node: FarmNode, opts: ScanOptions = {}): Promise<Buffer> {
  const client = new Client()
  return new Promise<Buffer>((resolve, reject) => {
    let key: Buffer | null = null
    let finished = false
    const done = (e?: Error & { code?: string }) => {
      if (finished) return
      finished = true
      client.removeAllListeners()
      client.on('error', () => {})
      client.end()
      if (key) resolve(key)
      else
        reject(
          new NodeUnreachableError(
            node,
            e ? describeNetworkError(e) : 'the connection closed before a host key was offered',
          ),
        )
    }
    client.once('error', done)
    client.once('close', () => done())
    client.once('ready', () => done())
    try {
      client.connect({
        host: node.host,
        port: node.port,
        username: node.user,
        readyTimeout: opts.timeoutMs ?? 10_000,
        ...(opts.sock ? { sock: opts.sock } : {}),
        algorithms: { serverHostKey: hostKeyAlgorithmsFor(opts.known ?? []) as never },
        hostVerifier: (offered: Buffer) => {
          key = Buffer.from(offered)
          // Refusing ends the handshake here: nothing is authenticated.
          setImmediate(() => done())
          return false
        },
      })
    } catch (e) {
      done(e as Error)
    }
  })
}
