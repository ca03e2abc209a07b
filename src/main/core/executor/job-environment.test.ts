import { execFileSync } from 'node:child_process'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { shellQuote, stopGracefully } from './job-environment'

/** What sh prints for `printf %s <word>`: the word as the shell saw it. */
const echoed = (quoted: string) =>
  execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' })

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
    // One shell for all samples (150 shells were slow on a busy machine): each word is printed
    // followed by a NUL, which no sample holds, and split back.
    // Characters: the shell's own specials often, any other code point (but NUL and lone
    // surrogates, which no string of a script holds) otherwise. (fast-check's 'binary' unit took
    // 5 s for these 300 samples.)
    const char = fc.oneof(
      fc.constantFrom("'", '"', '\\', '$', '`', '\n', ' ', '*', '!', '#', ';', '|', '&', '(', '~', '='),
      fc
        .integer({ min: 1, max: 0x10ffff })
        .filter((c) => c < 0xd800 || c > 0xdfff)
        .map((c) => String.fromCodePoint(c)),
    )
    const words = fc.sample(
      fc.array(char, { maxLength: 40 }).map((cs) => cs.join('')),
      { numRuns: 300 },
    )
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`])
    expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(words)
  })
})

describe('stopGracefully', () => {
  afterEach(() => vi.useRealTimers())

  it('terms at once, kills when the grace period is over, and does nothing once disarmed', () => {
    vi.useFakeTimers()
    const calls: string[] = []
    const abort = new AbortController()
    const disarm = stopGracefully(
      abort.signal,
      10_000,
      () => calls.push('term'),
      () => calls.push('kill'),
    )
    expect(calls).toEqual([])
    abort.abort()
    expect(calls).toEqual(['term'])
    vi.advanceTimersByTime(9_999)
    expect(calls).toEqual(['term'])
    vi.advanceTimersByTime(1)
    expect(calls).toEqual(['term', 'kill'])
    disarm()

    const ended: string[] = []
    const second = new AbortController()
    const off = stopGracefully(
      second.signal,
      10_000,
      () => ended.push('term'),
      () => ended.push('kill'),
    )
    second.abort()
    off() // the step ended on SIGTERM: no SIGKILL follows
    vi.advanceTimersByTime(60_000)
    expect(ended).toEqual(['term'])
  })

  it('kills at once without a grace period, and stops a step whose signal had already aborted', () => {
    const calls: string[] = []
    stopGracefully(
      AbortSignal.abort(),
      0,
      () => calls.push('term'),
      () => calls.push('kill'),
    )
    expect(calls).toEqual(['kill'])
    const untouched: string[] = []
    stopGracefully(
      new AbortController().signal,
      0,
      () => untouched.push('term'),
      () => untouched.push('kill'),
    )()
    expect(untouched).toEqual([])
  })
})
