import { describe, expect, it } from 'vitest'
import { WorkflowCommands } from './workflow-commands'

describe('WorkflowCommands', () => {
  it('masks secrets from the start and ::add-mask:: values from then on, longest first, line by line', () => {
    const c = new WorkflowCommands(['tok-123', 'multi\nline'])
    expect(c.process('token is tok-123')).toBe('token is ***')
    // Each line of a multi-line secret is a mask of its own, as on GitHub.
    expect(c.process('line one: multi')).toBe('*** one: ***')
    expect(c.process('::add-mask::hunter2')).toBeNull()
    expect(c.process('pw hunter2 and hunter')).toBe('pw *** and hunter')
    // What steps added, apart from the secrets: what a job's checkpoint keeps for the next orchestrator.
    expect(c.added).toEqual(['hunter2'])
    const again = new WorkflowCommands(['tok-123'])
    for (const m of c.added) again.addMask(m)
    expect(again.mask('hunter2 tok-123')).toBe('*** ***')
  })

  it('turns ::error/::warning/::notice into annotations with file, line, col and title', () => {
    const c = new WorkflowCommands(['s3cr3t'])
    expect(c.process('::warning file=app.c,line=3,col=7,title=Look::value %25 used s3cr3t')).toBe(
      'Warning: Look: value % used *** (app.c:3:7)',
    )
    expect(c.process('::error::plain')).toBe('Error: plain')
    expect(c.annotations).toEqual([
      { level: 'warning', message: 'value % used ***', file: 'app.c', line: 3, col: 7, title: 'Look' },
      { level: 'error', message: 'plain' },
    ])
  })

  it('shows groups, hides endgroup, and ignores commands between ::stop-commands:: and its token', () => {
    const c = new WorkflowCommands()
    expect(c.process('::group::Build')).toBe('▸ Build')
    expect(c.process('::endgroup::')).toBeNull()
    expect(c.process('::stop-commands::pause1')).toBeNull()
    expect(c.process('::add-mask::notamask')).toBe('::add-mask::notamask')
    expect(c.process('::pause1::')).toBeNull()
    expect(c.process('::add-mask::nowmasked')).toBeNull()
    expect(c.process('nowmasked')).toBe('***')
    expect(c.process('::debug::detail')).toBe('debug: detail')
    expect(c.process('::unknown-command::x')).toBe('::unknown-command::x')
  })
})

describe('masks in encoded forms', () => {
  it('masks a secret JSON-escaped, URI-escaped, base64’d and quoted for an expression, as GitHub does', () => {
    const secret = `pa"ss\\word'X/Y`
    const c = new WorkflowCommands([secret])
    expect(c.mask(JSON.stringify({ Q: secret }))).toBe('{"Q":"***"}')
    expect(c.mask(`url?q=${encodeURIComponent(secret)}`)).toBe('url?q=***')
    expect(c.mask(`b64 ${Buffer.from(secret).toString('base64')}`)).toMatch(/^b64 \*\*\*=*$/)
    expect(c.mask(`format('${secret.replaceAll("'", "''")}')`)).toBe("format('***')")
  })

  it('masks the file and title of an annotation', () => {
    const c = new WorkflowCommands(['mypriv'])
    expect(c.process('::error file=mypriv.txt,title=about mypriv::boom')).toBe(
      'Error: about ***: boom (***.txt)',
    )
    expect(c.annotations[0]).toMatchObject({ file: '***.txt', title: 'about ***' })
  })
})
