/**
 * The farm's secrets at rest: one file in the data directory (`secrets.json`, mode 0600) whose
 * values are each sealed with AES-256-GCM under a key that never touches the disk in the clear.
 * The key comes from a `SecretKeySource`: the desktop app's OS keychain (Electron safeStorage),
 * or, for `serve` and the CLI, a passphrase in YARDMASTER_SECRETS_KEY. The file records which
 * source sealed it, so a process holding another key is told what to set instead of failing to
 * decrypt. Values are write-only from the outside: the API and the CLI list names and set or
 * delete values; only a run about to use a secret reads it (`reveal`).
 *
 * A value's name is bound into its seal (GCM's additional data): values cannot be swapped
 * between names by editing the file. Writes are atomic (temporary file, fsync, rename) under a
 * lock file, so the console and a CLI setting secrets at once lose nothing.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync } from 'node:crypto'
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'

/** Where the key comes from. `key(salt)` gives 32 bytes, or null when this process has none. */
export interface SecretKeySource {
  /** What a user is told to provide: "the environment variable YARDMASTER_SECRETS_KEY". */
  readonly describe: string
  /** Recorded in the file, to name the source that sealed it. */
  readonly kind: string
  key(salt: Buffer): Buffer | null
}

export interface SecretInfo {
  name: string
  /** Epoch ms of the last set. */
  updatedAt: number
}

interface Sealed {
  iv: string
  tag: string
  data: string
  updatedAt: number
}

interface SecretFile {
  version: 1
  kind: string
  salt: string
  /** An HMAC of a constant under the key: tells a wrong key from a damaged value. */
  check: string
  secrets: Record<string, Sealed>
}

/** Thrown when a secret cannot be stored or read; the message says what to do. */
export class SecretStoreError extends Error {
  override name = 'SecretStoreError'
}

/** GitHub's limits: names of letters, digits and _, not starting with a digit or GITHUB_; values up to 48 KB. */
export const MAX_SECRET_BYTES = 48 * 1024
export const MAX_SECRETS = 1000

export const ENV_KEY = 'YARDMASTER_SECRETS_KEY'

/** A passphrase from the environment, stretched with scrypt and the file's salt. */
export function envKeySource(env: NodeJS.ProcessEnv = process.env): SecretKeySource {
  return {
    describe: `the environment variable ${ENV_KEY} (a passphrase of 16 characters or more)`,
    kind: 'env',
    key(salt) {
      const pass = env[ENV_KEY]
      if (!pass) return null
      if (pass.length < 16)
        throw new SecretStoreError(`${ENV_KEY} is too short: use a passphrase of 16 characters or more`)
      return scryptSync(pass, salt, 32)
    },
  }
}

/**
 * The desktop app's source: a random key kept in the data directory sealed by the OS keychain
 * (Electron's safeStorage: Keychain on macOS, DPAPI on Windows, libsecret or kwallet on Linux).
 * The shell passes safeStorage in, so core does not import Electron.
 */
export function keychainKeySource(
  dataDir: string,
  safe: {
    isEncryptionAvailable(): boolean
    encryptString(s: string): Buffer
    decryptString(b: Buffer): string
  },
): SecretKeySource {
  const file = join(dataDir, 'secrets.key')
  return {
    describe: "the desktop app's OS keychain (open the Yardmaster app on this account)",
    kind: 'keychain',
    key() {
      if (!safe.isEncryptionAvailable()) return null
      if (existsSync(file)) return Buffer.from(safe.decryptString(readFileSync(file)), 'base64')
      const key = randomBytes(32)
      writeAtomic(file, safe.encryptString(key.toString('base64')))
      return key
    },
  }
}

export class SecretStore {
  private readonly file: string

  constructor(
    dataDir: string,
    private readonly source: SecretKeySource,
    private readonly now: () => number = Date.now,
  ) {
    this.file = join(dataDir, 'secrets.json')
  }

  /** Names and when each was set; never a value. */
  list(): SecretInfo[] {
    const f = this.read()
    if (!f) return []
    return Object.entries(f.secrets)
      .map(([name, s]) => ({ name, updatedAt: s.updatedAt }))
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  set(rawName: string, value: string): SecretInfo {
    const name = checkName(rawName)
    if (Buffer.byteLength(value) > MAX_SECRET_BYTES)
      throw new SecretStoreError(
        `secret ${name}: the value is larger than 48 KB (GitHub's limit); store a file's path or split it`,
      )
    if (value === '')
      throw new SecretStoreError(`secret ${name}: the value is empty; delete the secret instead`)
    return this.locked(() => {
      const f = this.read() ?? this.fresh()
      const key = this.keyFor(f)
      if (!(name in f.secrets) && Object.keys(f.secrets).length >= MAX_SECRETS)
        throw new SecretStoreError(`at most ${MAX_SECRETS} secrets can be stored; delete some first`)
      f.secrets[name] = seal(key, name, value, this.now())
      this.write(f)
      return { name, updatedAt: f.secrets[name]!.updatedAt }
    })
  }

  /** True when there was such a secret. */
  delete(rawName: string): boolean {
    const name = checkName(rawName)
    return this.locked(() => {
      const f = this.read()
      if (!f || !(name in f.secrets)) return false
      delete f.secrets[name]
      this.write(f)
      return true
    })
  }

  /**
   * The values of the named secrets that are stored (names compared as GitHub does, ignoring
   * case), for a run about to use them. Asks for the key only when one of them is stored.
   */
  reveal(names: Iterable<string>): Record<string, string> {
    const f = this.read()
    if (!f) return {}
    const wanted = [...new Set([...names].map((n) => n.toUpperCase()))].filter((n) => n in f.secrets)
    if (!wanted.length) return {}
    const key = this.keyFor(f)
    const out: Record<string, string> = {}
    for (const name of wanted) out[name] = unseal(key, name, f.secrets[name]!, this.file)
    return out
  }

  private fresh(): SecretFile {
    const salt = randomBytes(16)
    const key = this.sourceKey(salt, null)
    return {
      version: 1,
      kind: this.source.kind,
      salt: salt.toString('base64'),
      check: checkOf(key),
      secrets: {},
    }
  }

  private keyFor(f: SecretFile): Buffer {
    if (f.kind !== this.source.kind)
      throw new SecretStoreError(
        `the secrets in ${this.file} were sealed by ${f.kind === 'env' ? `the passphrase in ${ENV_KEY}` : "the desktop app's OS keychain"}, not by ${this.source.describe}: use that, or delete the file and set the secrets again`,
      )
    const key = this.sourceKey(Buffer.from(f.salt, 'base64'), f)
    if (checkOf(key) !== f.check)
      throw new SecretStoreError(
        `the key from ${this.source.describe} is not the one the secrets in ${this.file} were sealed with`,
      )
    return key
  }

  private sourceKey(salt: Buffer, f: SecretFile | null): Buffer {
    const key = this.source.key(salt)
    if (!key)
      throw new SecretStoreError(
        `${f ? `the secrets in ${this.file} are sealed` : 'secrets are sealed'} with a key from ${this.source.describe}, and this process has none: set it and try again`,
      )
    return key
  }

  private read(): SecretFile | null {
    if (!existsSync(this.file)) return null
    let f: SecretFile
    try {
      f = JSON.parse(readFileSync(this.file, 'utf8')) as SecretFile
    } catch (e) {
      throw new SecretStoreError(
        `${this.file} is damaged (${(e as Error).message}); restore it from a backup or delete it and set the secrets again`,
      )
    }
    if (f.version !== 1 || typeof f.secrets !== 'object' || !f.salt || !f.check)
      throw new SecretStoreError(`${this.file} is not a secrets file this version of Yardmaster reads`)
    return f
  }

  private write(f: SecretFile): void {
    writeAtomic(this.file, Buffer.from(JSON.stringify(f, null, 1) + '\n'))
  }

  /** One writer at a time across processes; a lock older than 10 s is a crashed writer's. */
  private locked<T>(fn: () => T): T {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 })
    const lock = this.file + '.lock'
    for (let tries = 0; ; tries++) {
      try {
        closeSync(openSync(lock, 'wx', 0o600))
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        if (stale(lock)) unlinkSync(lock)
        else if (tries > 200) throw new SecretStoreError(`${lock} is held by another process; try again`)
        else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25)
      }
    }
    try {
      return fn()
    } finally {
      try {
        unlinkSync(lock)
      } catch {
        // removed as stale by another writer: nothing to do
      }
    }
  }
}

function stale(lock: string): boolean {
  try {
    return Date.now() - statSync(lock).mtimeMs > 10_000
  } catch {
    return false
  }
}

/** GitHub's naming rules; stored upper-case, since GitHub compares names ignoring case. */
export function checkName(raw: string): string {
  const name = String(raw ?? '').trim()
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new SecretStoreError(
      `secret name ${JSON.stringify(name)}: use letters, digits and _ only, not starting with a digit`,
    )
  if (name.length > 200)
    throw new SecretStoreError(`secret name ${name.slice(0, 20)}…: at most 200 characters`)
  const upper = name.toUpperCase()
  if (upper.startsWith('GITHUB_'))
    throw new SecretStoreError(`secret name ${name}: names starting with GITHUB_ are reserved`)
  return upper
}

function checkOf(key: Buffer): string {
  return createHmac('sha256', key).update('yardmaster secrets v1').digest('base64')
}

function seal(key: Buffer, name: string, value: string, at: number): Sealed {
  const iv = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(Buffer.from(name))
  const data = Buffer.concat([c.update(value, 'utf8'), c.final()])
  return {
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    data: data.toString('base64'),
    updatedAt: at,
  }
}

function unseal(key: Buffer, name: string, s: Sealed, file: string): string {
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'))
    d.setAAD(Buffer.from(name))
    d.setAuthTag(Buffer.from(s.tag, 'base64'))
    return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]).toString('utf8')
  } catch {
    throw new SecretStoreError(`secret ${name} in ${file} is damaged or was altered: set it again`)
  }
}

function writeAtomic(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
}
