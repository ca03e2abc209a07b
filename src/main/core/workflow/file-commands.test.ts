import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import {
  collectScript,
  EpilogueSplitter,
  FileCommandError,
  parseKeyValueFile,
  refusedEnvName,
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
    const text = execFileSync('sh', ['-c', collectScript(dir, 'n0nce')], { encoding: 'utf8' })
    expect(splitCollected(text, 'n0nce')).toEqual({
      env: 'A=1\n',
      output: 'o=2\n',
      path: '',
      summary: '',
      state: '',
    })
  })

  it('cannot be forged by what a step writes: a summary that imitates the framing stays summary', () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim()
    // The review's attack: text in $GITHUB_STEP_SUMMARY posing as the start of another file,
    // with the separators of an older scheme and with a guessed nonce.
    const forged = [
      '# Report',
      '@@ym:path@@',
      '/tmp/evil',
      '@@ym:env@@',
      'LD_PRELOAD=/tmp/evil.so',
      '@@ym-guessed:env@@',
      'PATH=/tmp/evil',
      '',
    ].join('\n')
    execFileSync('sh', ['-c', `cat > ${dir}/summary`], { input: forged })
    execFileSync('sh', ['-c', `printf 'A=1\n' > ${dir}/env`])
    const text = execFileSync('sh', ['-c', collectScript(dir, 'a1b2c3')], { encoding: 'utf8' })
    const files = splitCollected(text, 'a1b2c3')
    expect(files.env).toBe('A=1\n')
    expect(files.path).toBe('')
    expect(files.summary).toBe(forged)
    expect(files.state).toBe('')
  })

  it('refuses a nonce that could break the framing script', () => {
    expect(() => collectScript('/tmp/x', "a'; rm -rf /; '")).toThrow('the nonce must be letters and digits')
  })

  it('says why $GITHUB_ENV may not set NODE_OPTIONS, in any case, and lets other names through', () => {
    const msg = "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command."
    expect(refusedEnvName('NODE_OPTIONS')).toBe(msg)
    expect(refusedEnvName('node_options')).toBe(msg)
    expect(refusedEnvName('NODE_OPTIONS_X')).toBeNull()
    expect(refusedEnvName('LD_LIBRARY_PATH')).toBeNull()
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
