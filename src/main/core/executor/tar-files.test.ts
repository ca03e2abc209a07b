import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { tarOf } from './tar-files'

/** `tar -tv` of the archive: mode, owner and name per entry, as GNU tar lists them. */
function listing(tar: Buffer): string[] {
  return execFileSync('tar', ['-tv', '--numeric-owner', '-f', '-'], { input: tar, encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const [mode, owner, , , , name] = l.split(/\s+/)
      return `${mode} ${owner} ${name}`
    })
}

describe('tarOf', () => {
  it('packs the files under a private folder, owned by the steps’ user, relative to /', async () => {
    const tar = await tarOf(
      [
        { path: '/tmp/ym/_steps/ab/script.sh', content: 'echo "$SECRET"\n' },
        { path: '/tmp/ym/_steps/ab/launch.sh', content: 'sh script.sh\n' },
      ],
      '/tmp/ym/_steps/ab',
      { uid: 1000, gid: 1001 },
    )
    expect(listing(tar)).toEqual([
      'drwx------ 1000/1001 tmp/ym/_steps/ab/',
      '-rw------- 1000/1001 tmp/ym/_steps/ab/script.sh',
      '-rw------- 1000/1001 tmp/ym/_steps/ab/launch.sh',
    ])
    const content = execFileSync('tar', ['-xOf', '-', 'tmp/ym/_steps/ab/script.sh'], {
      input: tar,
      encoding: 'utf8',
    })
    expect(content).toBe('echo "$SECRET"\n')
  })

  it('keeps multi-byte text whole', async () => {
    const tar = await tarOf([{ path: '/d/f', content: 'é ✓ 漢字' }], '/d', { uid: 0, gid: 0 })
    expect(execFileSync('tar', ['-xOf', '-', 'd/f'], { input: tar, encoding: 'utf8' })).toBe('é ✓ 漢字')
  })

  it('refuses a file outside the folder', async () => {
    await expect(tarOf([{ path: '/etc/passwd', content: '' }], '/d', { uid: 0, gid: 0 })).rejects.toThrow(
      '/etc/passwd is not inside /d',
    )
  })
})
