import { execFileSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { shellQuote } from './job-environment'

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
