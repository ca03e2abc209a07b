import { mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { secretsForRun } from './run-secrets'
import { envKeySource, keychainKeySource, SecretStore, SecretStoreError } from './secret-store'

const PASS = 'correct horse battery staple'
const dir = () => mkdtempSync(join(tmpdir(), 'ym-secrets-'))
const store = (d: string, pass: string | null = PASS) =>
  new SecretStore(
    d,
    envKeySource(pass === null ? {} : { YARDMASTER_SECRETS_KEY: pass }),
    () => 1_700_000_000_000,
  )

describe('SecretStore', () => {
  it('keeps values sealed on disk and gives them back only to reveal', () => {
    const d = dir()
    store(d).set('deploy_key', 'tok-5ecr3t-7e1d\nsecond line')
    const raw = readFileSync(join(d, 'secrets.json'), 'utf8')
    expect(raw).not.toContain('5ecr3t')
    expect(raw).not.toContain(Buffer.from('tok-5ecr3t-7e1d').toString('base64').slice(0, 12))
    expect(statSync(join(d, 'secrets.json')).mode & 0o777).toBe(0o600)
    expect(store(d).list()).toEqual([{ name: 'DEPLOY_KEY', updatedAt: 1_700_000_000_000 }])
    // Names compare ignoring case, as GitHub's do; unknown names are left out.
    expect(store(d).reveal(['Deploy_Key', 'OTHER'])).toEqual({ DEPLOY_KEY: 'tok-5ecr3t-7e1d\nsecond line' })
  })

  it('replaces and deletes', () => {
    const d = dir()
    store(d).set('A', 'one')
    store(d).set('a', 'two')
    store(d).set('B', 'three')
    expect(store(d).reveal(['A', 'B'])).toEqual({ A: 'two', B: 'three' })
    expect(store(d).delete('a')).toBe(true)
    expect(store(d).delete('a')).toBe(false)
    expect(
      store(d)
        .list()
        .map((s) => s.name),
    ).toEqual(['B'])
  })

  it('says what to set when the key is missing or wrong, and asks for it only when a stored secret is used', () => {
    const d = dir()
    store(d).set('A', 'one')
    expect(() => store(d, null).reveal(['A'])).toThrow(/YARDMASTER_SECRETS_KEY.*set it and try again/)
    expect(store(d, null).reveal(['NOT_STORED'])).toEqual({})
    expect(store(d, null).list()).toHaveLength(1)
    expect(() => store(d, 'another passphrase of length').reveal(['A'])).toThrow(/is not the one/)
    expect(() => store(d, 'short').set('B', 'x')).toThrow(/too short/)
  })

  it('refuses a value moved to another name, and names GitHub refuses', () => {
    const d = dir()
    store(d).set('A', 'one')
    store(d).set('B', 'two')
    const f = JSON.parse(readFileSync(join(d, 'secrets.json'), 'utf8'))
    f.secrets.B = f.secrets.A
    writeFileSync(join(d, 'secrets.json'), JSON.stringify(f))
    expect(() => store(d).reveal(['B'])).toThrow(/secret B .* damaged or was altered/)
    for (const bad of ['1ABC', 'has-dash', 'GITHUB_TOKEN', '', 'a b'])
      expect(() => store(d).set(bad, 'x'), bad).toThrow(SecretStoreError)
    expect(() => store(d).set('BIG', 'x'.repeat(48 * 1024 + 1))).toThrow(/48 KB/)
    expect(() => store(d).set('EMPTY', '')).toThrow(/empty/)
  })

  it('tells a damaged file apart, and names the source that sealed it', () => {
    const d = dir()
    writeFileSync(join(d, 'secrets.json'), '{not json')
    expect(() => store(d).list()).toThrow(/secrets.json is damaged/)
    const k = dir()
    const safe = {
      isEncryptionAvailable: () => true,
      encryptString: (s: string) => Buffer.from(s.split('').reverse().join('')),
      decryptString: (b: Buffer) => b.toString().split('').reverse().join(''),
    }
    new SecretStore(k, keychainKeySource(k, safe)).set('A', 'from the app')
    expect(new SecretStore(k, keychainKeySource(k, safe)).reveal(['A'])).toEqual({ A: 'from the app' })
    expect(() => store(k).reveal(['A'])).toThrow(/sealed by the desktop app's OS keychain/)
    const locked = { ...safe, isEncryptionAvailable: () => false }
    expect(() => new SecretStore(k, keychainKeySource(k, locked)).reveal(['A'])).toThrow(
      /this process has none/,
    )
  })

  it('takes over a lock left by a crashed writer', () => {
    const d = dir()
    store(d).set('A', 'one')
    const lock = join(d, 'secrets.json.lock')
    writeFileSync(lock, '')
    const old = new Date(Date.now() - 60_000)
    utimesSync(lock, old, old)
    store(d).set('B', 'two')
    expect(
      store(d)
        .list()
        .map((s) => s.name),
    ).toEqual(['A', 'B'])
  })
})

describe('secretsForRun', () => {
  it('gives the stored secrets the workflow names, what the caller gave first, and never asks for a key it does not need', () => {
    const d = dir()
    store(d).set('A', 'stored a')
    store(d).set('B', 'stored b')
    store(d).set('UNUSED', 'never read')
    const wf = join(d, 'wf.yml')
    writeFileSync(
      wf,
      'jobs:\n  j:\n    steps:\n      - run: echo ${{ secrets.a }} ${{ secrets.B }} ${{ secrets.GITHUB_TOKEN }}\n',
    )
    expect(secretsForRun(store(d), wf, { b: 'given' })).toEqual({ A: 'stored a', b: 'given' })
    expect(secretsForRun(null, wf, { b: 'given' })).toEqual({ b: 'given' })
    // Every named secret given: the store's key is not needed.
    expect(secretsForRun(store(d, null), wf, { A: '1', B: '2' })).toEqual({ A: '1', B: '2' })
    expect(() => secretsForRun(store(d, null), wf)).toThrow(/YARDMASTER_SECRETS_KEY/)
  })
})
