import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { combineDigests, findHashFilesCalls, hashFilesKey, matchFiles } from './hash-files'
import { evaluateExpression, HASH_FILES_CONTEXT } from './expressions'

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')

describe('hashFiles', () => {
  it('finds each distinct call with its literal patterns', () => {
    expect(
      findHashFilesCalls(
        `x \${{ hashFiles('**/*.lock', '!vendor/**') }} y \${{ HASHFILES('a''b') }} \${{ hashFiles('**/*.lock', '!vendor/**') }}`,
      ),
    ).toEqual([['**/*.lock', '!vendor/**'], ["a'b"]])
    expect(findHashFilesCalls('no calls here')).toEqual([])
  })

  it('matches workspace files with globs and exclusions, sorted', () => {
    const files = ['./b/yarn.lock', './a.lock', './vendor/x.lock', './src/main.c', './.hidden/c.lock']
    expect(matchFiles(files, ['**/*.lock', '!vendor/**'])).toEqual([
      '.hidden/c.lock',
      'a.lock',
      'b/yarn.lock',
    ])
    expect(matchFiles(files, ['./src/*.c'])).toEqual(['src/main.c'])
    expect(matchFiles(files, ['nothing/*'])).toEqual([])
  })

  it('combines per-file digests as GitHub does, and is empty when nothing matched', () => {
    const a = sha('alpha\n')
    const b = sha('beta\n')
    const expected = createHash('sha256')
      .update(Buffer.from(a, 'hex'))
      .update(Buffer.from(b, 'hex'))
      .digest('hex')
    expect(combineDigests([a, b])).toBe(expected)
    expect(combineDigests([])).toBe('')
  })

  it('is answered by the evaluator from the step’s precomputed answers, else refused', () => {
    const answers = { [hashFilesKey(['**/*.lock'])]: 'abc123' }
    expect(
      evaluateExpression("format('key-{0}', hashFiles('**/*.lock'))", { [HASH_FILES_CONTEXT]: answers }),
    ).toBe('key-abc123')
    expect(() => evaluateExpression("hashFiles('other')", { [HASH_FILES_CONTEXT]: answers })).toThrow(
      'hashFiles() is only available in steps, with literal patterns',
    )
  })
})
