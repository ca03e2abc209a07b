import { describe, expect, it } from 'vitest'
import { defaultDataDir } from '../core/data-dir'
import { EXIT, parseCli, UsageError } from './args'

function usageError(argv: string[]): string {
  try {
    parseCli(argv)
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError)
    expect((e as Error).name).toBe('UsageError')
    return (e as Error).message
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`)
}

describe('parseCli', () => {
  it('has defaults for everything', () => {
    expect(parseCli([])).toEqual({
      command: 'help',
      positionals: [],
      farm: undefined,
      dataDir: defaultDataDir(),
      json: false,
      limit: 20,
      port: 7420,
      host: '127.0.0.1',
      inputs: {},
      secrets: {},
      vars: {},
      event: undefined,
      eventPath: undefined,
      platforms: {},
      job: undefined,
      yes: false,
      acceptNewHostKeys: false,
      reason: undefined,
      watch: false,
      priority: undefined,
      failed: false,
      follow: false,
      onQuit: 'ask',
    })
  })

  it('takes --on-quit leave|cancel|ask for serve', () => {
    expect(parseCli(['serve', '--on-quit', 'leave'])).toMatchObject({ onQuit: 'leave' })
    expect(parseCli(['serve', '--on-quit', 'cancel'])).toMatchObject({ onQuit: 'cancel' })
    expect(() => parseCli(['serve', '--on-quit', 'stay'])).toThrow(
      '--on-quit must be leave, cancel or ask, not "stay"',
    )
  })

  it('takes --priority (one of the classes), --failed and --follow', () => {
    expect(parseCli(['run', 'x.yml', '--priority', 'hotfix'])).toMatchObject({ priority: 'hotfix' })
    expect(() => parseCli(['run', 'x.yml', '--priority', 'urgent'])).toThrow(
      '--priority must be one of hotfix, high, normal, low, not "urgent"',
    )
    expect(parseCli(['rerun', '3', '--failed'])).toMatchObject({ command: 'rerun', failed: true })
    expect(parseCli(['logs', '3', '-f'])).toMatchObject({ command: 'logs', follow: true })
  })

  it('takes --reason and --watch', () => {
    expect(parseCli(['node', 'n1', 'drain', '--reason', 'disk swap'])).toMatchObject({ reason: 'disk swap' })
    expect(parseCli(['nodes', '--watch'])).toMatchObject({ watch: true })
  })

  it('takes --yes and --accept-new-host-keys', () => {
    expect(parseCli(['node', 'n1', 'trust', '--yes'])).toMatchObject({ yes: true, acceptNewHostKeys: false })
    expect(parseCli(['nodes', '--accept-new-host-keys'])).toMatchObject({
      yes: false,
      acceptNewHostKeys: true,
    })
  })

  it('takes repeated NAME=VALUE options, secrets from the environment, and refuses malformed ones', () => {
    process.env.YM_TEST_SECRET = 's3cret'
    const a = parseCli([
      'run',
      'x.yml',
      '--input',
      'a=1',
      '--input',
      'b=x=y',
      '--secret',
      'T=t',
      '--secret-env',
      'YM_TEST_SECRET',
      '--var',
      'V=v',
    ])
    expect(a).toMatchObject({
      inputs: { a: '1', b: 'x=y' },
      secrets: { T: 't', YM_TEST_SECRET: 's3cret' },
      vars: { V: 'v' },
    })
    expect(() => parseCli(['run', '--input', 'novalue'])).toThrow('--input takes NAME=VALUE, not "novalue"')
    expect(() => parseCli(['run', '--secret-env', 'YM_NOT_SET_ANYWHERE'])).toThrow(
      '--secret-env YM_NOT_SET_ANYWHERE: no environment variable YM_NOT_SET_ANYWHERE is set',
    )
  })

  it('takes the command and its positionals', () => {
    expect(parseCli(['run', 'ci.yml', '--farm', 'farm.yml'])).toMatchObject({
      command: 'run',
      positionals: ['ci.yml'],
      farm: 'farm.yml',
    })
  })

  it('reads --data-dir, --json, --limit and --port', () => {
    expect(parseCli(['history', '--data-dir=/d', '--json', '--limit', '5', '--port', '0'])).toMatchObject({
      command: 'history',
      dataDir: '/d',
      json: true,
      limit: 5,
      port: 0,
    })
    expect(parseCli(['serve', '--port', '65535', '--limit', '1000'])).toMatchObject({
      port: 65535,
      limit: 1000,
    })
  })

  it('maps --help, -h, --version and -v to commands when none is given', () => {
    expect(parseCli(['--help']).command).toBe('help')
    expect(parseCli(['-h']).command).toBe('help')
    expect(parseCli(['--version']).command).toBe('version')
    expect(parseCli(['-v']).command).toBe('version')
  })

  it('refuses --limit outside 1..1000 or not a whole number', () => {
    for (const v of ['0', '1001', '2.5', 'ten', '-1'])
      expect(usageError(['history', `--limit=${v}`])).toBe('--limit must be a whole number from 1 to 1000')
  })

  it('refuses --port outside 0..65535 or not a whole number', () => {
    for (const v of ['65536', '-1', '80.5', 'http'])
      expect(usageError(['serve', `--port=${v}`])).toBe('--port must be a whole number from 0 to 65535')
  })

  it('refuses unknown options and options without their value', () => {
    expect(usageError(['run', '--frm', 'x'])).toMatch(/^Unknown option '--frm'/)
    expect(usageError(['run', 'ci.yml', '--farm'])).toMatch(/--farm/)
  })

  it('documents its exit codes', () => {
    expect(EXIT).toEqual({ ok: 0, failed: 1, invalid: 2 })
  })

  // BUG: Number('') is 0, so an empty --port (`--port=`, or `--port "$PORT"` with PORT unset)
  // is read as port 0 (any free port) instead of being refused. The int() helper in args.ts should
  // refuse values that are not /^\d+$/ (which also stops `--limit 1e2` and `--port 0x50`).
  it('refuses an empty --port', () => {
    expect(usageError(['serve', '--port='])).toBe('--port must be a whole number from 0 to 65535')
  })

  // BUG: --help / -h after a command is parsed and then dropped (ParsedArgs has no `help`), so
  // `yardmaster run ci.yml --help` runs the workflow and `yardmaster history -h` lists history
  // instead of printing help.
  it('honours --help after a command', () => {
    expect(parseCli(['run', 'ci.yml', '--help']).command).toBe('help')
  })

  it('refuses an unknown command whatever follows it, --help and --version included', () => {
    for (const tail of [[], ['--help'], ['-h'], ['--version'], ['x.yml', '--json']])
      expect(usageError(['frobnicate', ...tail])).toBe('unknown command "frobnicate"')
    expect(usageError(['nods', '--help'])).toBe('unknown command "nods"; did you mean "nodes"?')
  })
})

describe('node options', () => {
  it('reads --from for copy-image', () => {
    expect(parseCli(['node', 'n2', 'copy-image', 'lab/x:1', '--from', 'n1'])).toMatchObject({
      command: 'node',
      positionals: ['n2', 'copy-image', 'lab/x:1'],
      from: 'n1',
    })
    expect(parseCli(['nodes']).from).toBeUndefined()
  })

  it('splits --runs-on at commas, trimming blanks', () => {
    expect(parseCli(['nodes', '--runs-on', 'linux, gpu,,x64 ']).runsOn).toEqual(['linux', 'gpu', 'x64'])
    expect(parseCli(['nodes']).runsOn).toBeUndefined()
  })

  it('refuses an empty --runs-on rather than matching every node', () => {
    for (const v of ['', ' , '])
      expect(usageError(['nodes', `--runs-on=${v}`])).toBe(
        '--runs-on needs at least one label, e.g. --runs-on linux,gpu',
      )
  })
})
