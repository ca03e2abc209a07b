import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import {
  collectScript,
  EpilogueSplitter,
  FileCommandError,
  parseKeyValueFile,
  splitCollected,
} from './file-commands'

describe('parseKeyValueFile ($GITHUB_ENV, $GITHUB_OUTPUT)', () => {
  it('reads NAME=value lines and NAME<<DELIMITER blocks, last one wins', () => {
    expect(parseKeyValueFile('a=1\nb=x=y\r\n\nstory<<EOF\nline one\nline two\nEOF\na=2\n', 'f')).toEqual({
      a: '2',
      b: 'x=y',
      story: 'line one\nline two',
    })
  })
  it('refuses an unterminated block and a line without a name, saying which file', () => {
    expect(() => parseKeyValueFile('x<<END\nno end\n', '$GITHUB_OUTPUT')).toThrow(
      new FileCommandError('$GITHUB_OUTPUT: "x<<END" is never closed by a line "END"'),
    )
    expect(() => parseKeyValueFile('just words\n', '$GITHUB_ENV')).toThrow(
      '$GITHUB_ENV: line "just words" is neither NAME=value nor NAME<<DELIMITER',
    )
  })
})

describe('collecting file commands', () => {
  it('prints every file framed, and splits it back, empty when a file is missing', () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim()
    execFileSync('sh', ['-c', `printf 'A=1\\n' > ${dir}/env; printf 'o=2\\n' > ${dir}/output`])
    const text = execFileSync('sh', ['-c', collectScript(dir)], { encoding: 'utf8' })
    expect(splitCollected(text)).toEqual({ env: 'A=1\n', output: 'o=2\n', path: '', summary: '', state: '' })
  })

  it('separates the step’s output from the epilogue after the marker, across chunk boundaries', () => {
    const s = new EpilogueSplitter('@@mark@@')
    let own = ''
    for (const chunk of ['hello\nwor', 'ld no newline@', '@ma', 'rk@@\n@@ym:env@@\nA=1\n'])
      own += s.feed(chunk)
    const end = s.end()
    expect(own + end.rest).toBe('hello\nworld no newline')
    expect(end.epilogue).toBe('\n@@ym:env@@\nA=1\n')
  })

  it('holds nothing back that cannot start the marker, so live output is not delayed', () => {
    const s = new EpilogueSplitter('@@mark@@')
    expect(s.feed('started\n')).toBe('started\n')
    expect(s.feed('almost @@ma')).toBe('almost ')
    expect(s.feed('x')).toBe('@@max')
  })

  it('gives all output back when no marker comes (the shell could not start)', () => {
    const s = new EpilogueSplitter('@@mark@@')
    const own = s.feed('sh: bash: not found\n@@ma')
    const end = s.end()
    expect(own + end.rest).toBe('sh: bash: not found\n@@ma')
    expect(end.epilogue).toBeNull()
  })
})
