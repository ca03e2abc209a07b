/**
 * Host key verification against an OpenSSH known_hosts file: plain and hashed (`|1|salt|hash`)
 * host patterns, `[host]:port` for ports other than 22, wildcards, and `@revoked` keys.
 */
import { createHash, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { HostKeyMismatchError, UnknownHostKeyError } from '../farm/farm-errors'
import type { FarmNode } from '../farm/farm-model'

export interface KnownKey {
  type: string
  key: Buffer
  line: number
}

export type HostKeyVerdict =
  | { kind: 'trusted' }
  | { kind: 'mismatch'; line: number }
  | { kind: 'revoked'; line: number }
  | { kind: 'unknown' }

interface Entry {
  marker: '' | '@revoked' | '@cert-authority'
  patterns: string[]
  type: string
  key: Buffer
  line: number
}

/** What connectSsh asks before sending any credential. */
export interface HostKeyChecker {
  /** Names the checks (the files read), so connections checked the same way can be shared. */
  readonly id?: string
  /** Keys on record for host:port, so their algorithms are offered first. */
  keysFor(host: string, port: number): KnownKey[]
  /** Null when `key` may be trusted for `node`; otherwise the error to refuse the connection with. */
  check(node: FarmNode, key: Buffer): Error | null
}

export class KnownHosts implements HostKeyChecker {
  private constructor(
    readonly file: string,
    private readonly entries: Entry[],
  ) {}

  get id(): string {
    return this.file
  }

  /** A missing file is an empty one: every host is then unknown. */
  static load(file: string): KnownHosts {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    return new KnownHosts(file, parseKnownHosts(text))
  }

  static parse(file: string, text: string): KnownHosts {
    return new KnownHosts(file, parseKnownHosts(text))
  }

  /** The keys recorded for host:port (not revoked, not CAs). */
  keysFor(host: string, port: number): KnownKey[] {
    return this.matching(host, port)
      .filter((e) => e.marker === '')
      .map(({ type, key, line }) => ({ type, key, line }))
  }

  verify(host: string, port: number, offered: Buffer): HostKeyVerdict {
    const entries = this.matching(host, port)
    const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(offered))
    if (revoked) return { kind: 'revoked', line: revoked.line }
    const plain = entries.filter((e) => e.marker === '')
    if (plain.some((e) => e.key.equals(offered))) return { kind: 'trusted' }
    const type = keyType(offered)
    const sameType = plain.find((e) => e.type === type)
    if (sameType) return { kind: 'mismatch', line: sameType.line }
    // Keys of other types only: a different key type than the one we know. OpenSSH treats that as a
    // changed key too when it cannot be checked; refusing is the safe side.
    if (plain.length) return { kind: 'mismatch', line: plain[0]!.line }
    return { kind: 'unknown' }
  }

  check(node: FarmNode, key: Buffer): Error | null {
    const verdict = this.verify(node.host, node.port, key)
    if (verdict.kind === 'trusted') return null
    return verdict.kind === 'unknown'
      ? new UnknownHostKeyError(node, this.file, fingerprint(key))
      : new HostKeyMismatchError(node, this.file, verdict.line, fingerprint(key))
  }

  private matching(host: string, port: number): Entry[] {
    const name = hostPattern(host, port)
    return this.entries.filter((e) => patternsMatch(e.patterns, name))
  }
}

/** The name known_hosts records a host under: `host` on port 22, else `[host]:port`, lower-cased as OpenSSH does. */
export function hostPattern(host: string, port: number): string {
  const h = host.toLowerCase()
  return port === 22 ? h : `[${h}]:${port}`
}

function parseKnownHosts(text: string): Entry[] {
  const out: Entry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let marker: Entry['marker'] = ''
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as Entry['marker']
    const [hosts, type, b64] = fields
    if (!hosts || !type || !b64) return
    out.push({ marker, patterns: hosts.split(','), type, key: Buffer.from(b64, 'base64'), line: i + 1 })
  })
  return out
}

function patternsMatch(patterns: string[], name: string): boolean {
  let matched = false
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false
    } else if (patternMatches(p, name)) matched = true
  }
  return matched
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  )
  return re.test(name)
}

/** The algorithm name at the head of an SSH public key blob. */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return ''
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

/** `SHA256:...`, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/**
 * Host key algorithms to offer, known types first, so a host with several keys presents the one
 * we can check rather than one we have never seen.
 */
export function hostKeyAlgorithmsFor(known: KnownKey[]): string[] {
  const forType: Record<string, string[]> = {
    'ssh-ed25519': ['ssh-ed25519'],
    'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
    'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
    'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
    'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  }
  const all = Object.values(forType).flat()
  const preferred = [...new Set(known.flatMap((k) => forType[k.type] ?? []))]
  return [...preferred, ...all.filter((a) => !preferred.includes(a))]
}
