import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WorkflowCatalog } from './workflow-catalog'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-catalog-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('WorkflowCatalog.knows', () => {
  it('knows the workflows of added folders and of the history, after links; nothing else', () => {
    const repo = join(dir, 'repo')
    mkdirSync(join(repo, '.github', 'workflows'), { recursive: true })
    const ci = join(repo, '.github', 'workflows', 'ci.yml')
    writeFileSync(ci, 'on: push\n')
    const ran = join(dir, 'ran.yml')
    writeFileSync(ran, 'on: push\n')
    const outside = join(dir, 'secret.yml')
    writeFileSync(outside, 'token: x\n')
    const link = join(dir, 'link.yml')
    symlinkSync(ci, link)
    const sneaky = join(dir, 'sneaky.yml')
    symlinkSync(outside, sneaky)
    const catalog = new WorkflowCatalog(dir, () => [ran])
    expect(catalog.knows(ci)).toBe(false)
    catalog.addFolder(repo)
    expect(catalog.knows(ci)).toBe(true)
    expect(catalog.knows(join(repo, '.github', '..', '.github', 'workflows', 'ci.yml'))).toBe(true)
    expect(catalog.knows(link)).toBe(true) // the same file as a known one
    expect(catalog.knows(ran)).toBe(true)
    expect(catalog.knows(outside)).toBe(false)
    expect(catalog.knows(sneaky)).toBe(false)
    expect(catalog.knows(join(dir, 'none.yml'))).toBe(false)
  })
})
