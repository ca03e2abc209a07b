import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCli, UsageError } from './args'
import { secretsCommand } from './secrets-command'

let dir: string
let out: string
let err: string
const io = { out: (t: string) => (out += t), err: (t: string) => (err += t), color: false }
const run = (argv: string[], value = 'v4lue') =>
  secretsCommand(parseCli(['secrets', ...argv, '--data-dir', dir]), io, async () => value)

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-secrets-cli-'))
  out = err = ''
  process.env.YARDMASTER_SECRETS_KEY = 'the unit test passphrase'
})
afterEach(() => {
  delete process.env.YARDMASTER_SECRETS_KEY
})

describe('yardmaster secrets', () => {
  it('sets, lists names only, and deletes', async () => {
    expect(await run(['list'])).toBe(0)
    expect(out).toMatch(/^no secrets stored/)
    expect(await run(['set', 'deploy_key'], 'tok-5ecr3t')).toBe(0)
    expect(err).toMatch(/^stored DEPLOY_KEY \(10 bytes, sealed in /)
    out = ''
    expect(await run(['list'])).toBe(0)
    expect(out).toMatch(/^NAME\s+UPDATED\nDEPLOY_KEY\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/)
    out = ''
    expect(await run(['list', '--json'])).toBe(0)
    expect(JSON.parse(out)).toEqual([{ name: 'DEPLOY_KEY', updatedAt: expect.any(Number) }])
    expect(out + err).not.toContain('5ecr3t')
    expect(await run(['rm', 'deploy_key'])).toBe(0)
    expect(await run(['rm', 'deploy_key'])).toBe(1)
    expect(err).toMatch(/no secret DEPLOY_KEY is stored/)
  })

  it('refuses bad usage, and says what to set without a key', async () => {
    await expect(run(['set'])).rejects.toThrow(UsageError)
    await expect(run(['frob'])).rejects.toThrow(/use list, set or rm/)
    await expect(run(['set', 'A', 'B'])).rejects.toThrow(/one name at a time/)
    delete process.env.YARDMASTER_SECRETS_KEY
    await expect(run(['set', 'A'])).rejects.toThrow(/YARDMASTER_SECRETS_KEY.*set it and try again/)
  })
})
