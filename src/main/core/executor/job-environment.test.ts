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
    const words = fc.sample(
      fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
      { numRuns: 300 },
    )
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`])
    expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(words)
  })
})
