import { describe, expect, it } from 'vitest'
import { main } from './main'

async function run(argv: string[]) {
  let out = ''
  let err = ''
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), color: false })
  return { code, out, err }
}

describe('yardmaster', () => {
  it('exits 2 on an unknown command, whatever follows it, and says so before the help', async () => {
    for (const argv of [['frobnicate'], ['frobnicate', '--help'], ['frobnicate', '--version']]) {
      const r = await run(argv)
      expect(r.code).toBe(2)
      expect(r.out).toBe('')
      expect(r.err).toMatch(/^yardmaster: unknown command "frobnicate"\n\nYardmaster /)
    }
  })

  it('prints help and the version with exit 0', async () => {
    expect(await run(['--help'])).toMatchObject({ code: 0, out: expect.stringContaining('Usage:') })
    expect(await run(['help'])).toMatchObject({ code: 0, out: expect.stringContaining('Usage:') })
    expect((await run(['--version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/)
  })
})
