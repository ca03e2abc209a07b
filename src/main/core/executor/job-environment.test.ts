import { execFileSync, spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { shellQuote, stepArgv } from './job-environment'

/** What sh prints for `printf %s <word>`: the word as the shell saw it. */
const echoed = (quoted: string) =>
  execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' })

describe('stepArgv', () => {
  it('runs shell: bash as GitHub does, with pipefail and no profile', () => {
    expect(stepArgv({ shell: 'bash', script: 'make' })).toEqual([
      'bash',
      '--noprofile',
      '--norc',
      '-eo',
      'pipefail',
      '-c',
      'make',
    ])
  })

  it('runs shell: sh with -e', () => {
    expect(stepArgv({ shell: 'sh', script: 'make' })).toEqual(['sh', '-e', '-c', 'make'])
  })

  it('picks bash -e, else sh -e, inside the environment when no shell is given', () => {
    const argv = stepArgv({ shell: null, script: 'echo "$0"; false; echo not reached' })
    expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
    expect(argv[3]).toBe('yardmaster-step')
    expect(argv[4]).toBe('echo "$0"; false; echo not reached')
    // The picker really runs the script as its $1, and -e stops it at `false`.
    let out = ''
    let code = 0
    try {
      out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
    } catch (e) {
      out = (e as { stdout: string }).stdout
      code = (e as { status: number }).status
    }
    expect(code).toBe(1)
    expect(out).toBe('bash\n')
  })
})

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    for (const w of ['make', 'a/b.c', 'KEY=value', 'user@host:22', '-x', '100%', 'a,b+c'])
      expect(shellQuote(w)).toBe(w)
  })

  it('quotes everything else, including the empty word', () => {
    expect(shellQuote('')).toBe("''")
    expect(shellQuote('two words')).toBe("'two words'")
    expect(shellQuote("it's")).toBe("'it'\\''s'")
    expect(shellQuote('$HOME')).toBe("'$HOME'")
  })

  it('round-trips nasty strings through sh', () => {
    const nasty = [
      '',
      ' ',
      "'",
      "''",
      '"',
      '\\',
      '$HOME',
      '$(rm -rf /)',
      '`id`',
      'a\nb',
      '\t\n',
      '*',
      '~',
      '!',
      '#comment',
      'a;b|c&d',
      'it\'s "quoted" \\ $x `y`',
      '-n',
      'é ✓ 漢字',
    ]
    for (const w of nasty) expect(echoed(shellQuote(w))).toBe(w)
  })

  it('round-trips any string without NUL (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
        (w) => echoed(shellQuote(w)) === w,
      ),
      { numRuns: 150 },
    )
  })
})

describe('stepArgv with a prelude and PATH additions', () => {
  it('runs the prelude and PATH change in the step’s own process, then the step', () => {
    const argv = stepArgv({
      shell: 'sh',
      script: 'echo "$PATH" | cut -d: -f1; cat /tmp/ym-prelude-test',
      prelude: 'echo made > /tmp/ym-prelude-test',
      pathPrepend: ['/opt/x bin'],
    })
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
    expect(out).toBe('/opt/x bin\nmade\n')
  })

  it('fails the step without running it when the prelude fails', () => {
    const argv = stepArgv({ shell: 'sh', script: 'echo should-not-run', prelude: 'false' })
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
    expect(r.status).toBe(127)
    expect(r.stdout).toBe('')
  })
})
