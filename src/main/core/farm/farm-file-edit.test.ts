import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NodeEdit } from '../../../shared/model'
import { editNodeInFarmFile, FarmEditError, writeFileAtomically, type WriteIo } from './farm-file-edit'
import { farmDigest, loadFarmFile, parseFarm } from './farm-file'
import type { Farm } from './farm-model'

// The real file system, with a hook into statSync: the atomic write's first call, which lets a
// test change the file between the edit's read and its rename.
const hooks = vi.hoisted(() => ({ stat: undefined as undefined | (() => void) }))
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>()
  const statSync = (...args: Parameters<typeof actual.statSync>) => {
    hooks.stat?.()
    return actual.statSync(...args)
  }
  return { ...actual, statSync, default: { ...actual, statSync } }
})

const FARM = `# The lab's farm: three nodes.
knownHosts: ./known_hosts   # next to this file

nodes:
  # the big one
  - name: builder-1
    host: 10.0.0.5
    user: ci
    labels: [Linux, x64, "gpu"] # what jobs may ask for
    slots: 4 # one per GPU
    defaultImage: 'debian:bookworm' # jobs without container:

  - name: mac
    host: mac.lan
    user: build
    executor: shell
    labels:
      - macos # the OS
      # signing needs the keychain
      - signing
      - arm64
  - { name: here, host: local, labels: [linux], slots: 1 }
platforms:
  ubuntu-latest:   debian:bookworm     # odd spacing, kept
`

let dir: string
let path: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'yardmaster-farm-edit-'))
  path = join(dir, 'farm.yml')
})
afterEach(() => {
  hooks.stat = undefined
  rmSync(dir, { recursive: true, force: true })
})

function farmWith(text: string): Farm {
  writeFileSync(path, text)
  return loadFarmFile(path)
}

/** Edits `text`'s farm, checks the result is what the file now holds, and returns the new text. */
function edited(text: string, node: string, edit: NodeEdit): string {
  const farm = editNodeInFarmFile(farmWith(text), node, edit)
  const out = readFileSync(path, 'utf8')
  expect(farm).toEqual(loadFarmFile(path))
  expect(farm.digest).toBe(farmDigest(out))
  return out
}

/** `text` with `from` replaced once by `to` (and `from` found exactly once). */
function replaced(text: string, from: string, to: string): string {
  expect(text.split(from)).toHaveLength(2)
  return text.replace(from, to)
}

function refusal(farm: Farm, node: string, edit: NodeEdit): FarmEditError {
  try {
    editNodeInFarmFile(farm, node, edit)
  } catch (e) {
    expect(e).toBeInstanceOf(FarmEditError)
    return e as FarmEditError
  }
  throw new Error('expected the edit to be refused')
}

const nodeOf = (farm: Farm, name: string) => farm.nodes.find((n) => n.name === name)!

describe('loadFarmFile', () => {
  it('keeps the digest of the bytes it read', () => {
    const farm = farmWith(FARM)
    expect(farm.digest).toMatch(/^[0-9a-f]{64}$/)
    expect(farm.digest).toBe(farmDigest(Buffer.from(FARM)))
    expect(parseFarm(path, FARM).digest).toBeUndefined()
  })

  it('still says why a file cannot be read', () => {
    expect(() => loadFarmFile(join(dir, 'missing.yml'))).toThrow(/cannot read the farm file: ENOENT/)
  })
})

describe('editNodeInFarmFile: each field, the rest of the file byte for byte', () => {
  it('slots: the value changes, its inline comment stays', () => {
    const out = edited(FARM, 'builder-1', { slots: 8 })
    expect(out).toBe(replaced(FARM, 'slots: 4 # one per GPU', 'slots: 8 # one per GPU'))
    expect(nodeOf(loadFarmFile(path), 'builder-1').slots).toBe(8)
  })

  it('labels in a flow list stay a flow list; kept labels keep their case and quotes', () => {
    const out = edited(FARM, 'builder-1', { labels: ['linux', 'x64', 'gpu', 'cuda'] })
    expect(out).toBe(
      replaced(FARM, 'labels: [Linux, x64, "gpu"] # what', 'labels: [Linux, x64, "gpu", cuda] # what'),
    )
    expect(nodeOf(loadFarmFile(path), 'builder-1').labels).toEqual([
      'self-hosted',
      'linux',
      'x64',
      'gpu',
      'cuda',
    ])
  })

  it('labels removed from a flow list', () => {
    const out = edited(FARM, 'builder-1', { labels: ['GPU'] })
    expect(out).toBe(replaced(FARM, 'labels: [Linux, x64, "gpu"]', 'labels: ["gpu"]'))
    expect(edited(out, 'builder-1', { labels: [] })).toBe(
      replaced(FARM, 'labels: [Linux, x64, "gpu"]', 'labels: []'),
    )
  })

  it('a padded flow list stays padded, and new labels take the quotes of the others', () => {
    const text = replaced(FARM, '[Linux, x64, "gpu"]', "[ 'linux', 'x64' ]")
    expect(edited(text, 'builder-1', { labels: ['linux', "it's"] })).toBe(
      replaced(text, "[ 'linux', 'x64' ]", "[ 'linux', 'it''s' ]"),
    )
  })

  it('defaultImage: the new value keeps the old quotes', () => {
    const out = edited(FARM, 'builder-1', { defaultImage: 'ghcr.io/lab/ci:2' })
    expect(out).toBe(replaced(FARM, "'debian:bookworm' # jobs", "'ghcr.io/lab/ci:2' # jobs"))
  })

  it('defaultImage: null removes its line, with its comment, and nothing else', () => {
    const out = edited(FARM, 'builder-1', { defaultImage: null })
    expect(out).toBe(replaced(FARM, "    defaultImage: 'debian:bookworm' # jobs without container:\n", ''))
    expect(nodeOf(loadFarmFile(path), 'builder-1').defaultImage).toBeNull()
  })

  it('a key the node lacks is added as its last line, in its indentation', () => {
    const out = edited(FARM, 'mac', { defaultImage: 'alpine:3', slots: 2 })
    expect(out).toBe(
      replaced(FARM, '      - arm64\n', '      - arm64\n    slots: 2\n    defaultImage: alpine:3\n'),
    )
    const n = nodeOf(loadFarmFile(path), 'mac')
    expect([n.slots, n.defaultImage]).toEqual([2, 'alpine:3'])
  })

  it('all three at once', () => {
    const out = edited(FARM, 'builder-1', { labels: ['linux'], slots: 1, defaultImage: 'alpine' })
    expect(out).toBe(
      FARM.replace('[Linux, x64, "gpu"]', '[Linux]')
        .replace('slots: 4', 'slots: 1')
        .replace("'debian:bookworm'", "'alpine'"),
    )
  })

  it('an edit that changes nothing writes nothing', () => {
    const farm = farmWith(FARM)
    const before = statSync(path)
    const after = editNodeInFarmFile(farm, 'builder-1', {
      labels: ['LINUX', 'x64', 'gpu', 'self-hosted', 'x64'],
      slots: 4,
      defaultImage: 'debian:bookworm',
    })
    expect(readFileSync(path, 'utf8')).toBe(FARM)
    expect(statSync(path).ino).toBe(before.ino)
    expect(after.digest).toBe(farm.digest)
    expect(editNodeInFarmFile(farm, 'mac', { defaultImage: null })).toEqual(after)
  })

  it('the returned farm carries the new digest, so edits can follow one another', () => {
    let farm = farmWith(FARM)
    farm = editNodeInFarmFile(farm, 'builder-1', { slots: 5 })
    farm = editNodeInFarmFile(farm, 'here', { slots: 3 })
    expect(nodeOf(farm, 'builder-1').slots).toBe(5)
    expect(readFileSync(path, 'utf8')).toBe(
      FARM.replace('slots: 4', 'slots: 5').replace(
        'labels: [linux], slots: 1 }',
        'labels: [linux], slots: 3 }',
      ),
    )
  })

  it('labels and keys that need quotes get them', () => {
    const out = edited(FARM, 'builder-1', {
      labels: ['true', '1.5', 'a#b', '&x', 'role=build', 'farm.node=n1'],
    })
    expect(out).toBe(
      replaced(FARM, '[Linux, x64, "gpu"]', '["true", "1.5", "a#b", "&x", role=build, farm.node=n1]'),
    )
    expect(edited(FARM, 'mac', { defaultImage: 'null' })).toContain('    defaultImage: "null"\n')
  })
})

describe('editNodeInFarmFile: block lists', () => {
  it('a label added at the end gets its own line', () => {
    const out = edited(FARM, 'mac', { labels: ['macos', 'signing', 'arm64', 'xcode'] })
    expect(out).toBe(replaced(FARM, '      - arm64\n', '      - arm64\n      - xcode\n'))
  })

  it('a label removed loses its line; comment lines stay', () => {
    const out = edited(FARM, 'mac', { labels: ['macos', 'arm64'] })
    expect(out).toBe(replaced(FARM, '      - signing\n', ''))
    expect(out).toContain('      # signing needs the keychain\n')
  })

  it('a label inserted goes before the next kept one', () => {
    const out = edited(FARM, 'mac', { labels: ['ios', 'macos', 'xcode', 'arm64'] })
    expect(out).toBe(
      FARM.replace('      - macos', '      - ios\n      - macos').replace(
        '      - signing\n      - arm64',
        '      - xcode\n      - arm64',
      ),
    )
  })

  it('replaced entirely: new lines where the old ones were', () => {
    const out = edited(FARM, 'mac', { labels: ['a', 'b'] })
    expect(out).toBe(
      replaced(
        FARM,
        '      - macos # the OS\n      # signing needs the keychain\n      - signing\n      - arm64\n',
        '      # signing needs the keychain\n      - a\n      - b\n',
      ),
    )
  })

  it('reordered: each position takes its new label, and their comments stay in place', () => {
    const out = edited(FARM, 'mac', { labels: ['arm64', 'macos', 'signing', 'x'] })
    expect(out).toBe(
      replaced(
        FARM,
        '      - macos # the OS\n      # signing needs the keychain\n      - signing\n      - arm64\n',
        '      - arm64 # the OS\n      # signing needs the keychain\n      - macos\n      - signing\n      - x\n',
      ),
    )
    expect(edited(out, 'mac', { labels: ['signing', 'arm64'] })).toBe(
      replaced(
        FARM,
        '      - macos # the OS\n      # signing needs the keychain\n      - signing\n      - arm64\n',
        '      - signing # the OS\n      # signing needs the keychain\n      - arm64\n',
      ),
    )
  })

  it('no labels left: `labels: []`, comment lines kept', () => {
    const out = edited(FARM, 'mac', { labels: [] })
    expect(out).toBe(
      replaced(
        FARM,
        '    labels:\n      - macos # the OS\n      # signing needs the keychain\n      - signing\n      - arm64\n',
        '    labels: []\n      # signing needs the keychain\n',
      ),
    )
  })

  it('an indentless list, at the end of a file without a final newline', () => {
    const text = 'nodes:\n- name: n\n  host: local\n  labels:\n  - a\n  - b'
    expect(edited(text, 'n', { labels: ['a', 'b', 'c', 'd'] })).toBe(text + '\n  - c\n  - d')
    expect(edited(text, 'n', { labels: ['b', 'a', 'c'] })).toBe(
      'nodes:\n- name: n\n  host: local\n  labels:\n  - b\n  - a\n  - c',
    )
  })
})

describe('editNodeInFarmFile: other layouts', () => {
  it('a node written as a flow mapping stays one', () => {
    const line = '  - { name: here, host: local, labels: [linux], slots: 1 }'
    expect(
      edited(FARM, 'here', { slots: 2, labels: ['linux', 'docker'], defaultImage: 'debian:bookworm-slim' }),
    ).toBe(
      replaced(
        FARM,
        line,
        '  - { name: here, host: local, labels: [linux, docker], slots: 2, defaultImage: debian:bookworm-slim }',
      ),
    )
    const text = replaced(FARM, line, '  - { defaultImage: x, name: here, host: local, slots: 2 }')
    expect(edited(text, 'here', { defaultImage: null })).toBe(
      replaced(FARM, line, '  - { name: here, host: local, slots: 2 }'),
    )
    const last = replaced(FARM, line, '  - { name: here, host: local, defaultImage: x }')
    expect(edited(last, 'here', { defaultImage: null })).toBe(
      replaced(FARM, line, '  - { name: here, host: local }'),
    )
    expect(edited(last, 'here', { labels: [] })).toBe(
      replaced(FARM, line, '  - { name: here, host: local, defaultImage: x, labels: [] }'),
    )
  })

  it('a key on the dash line is removed by moving the next key up', () => {
    const text = 'nodes:\n  - defaultImage: x # gone\n    name: n\n    host: local\n'
    expect(edited(text, 'n', { defaultImage: null })).toBe('nodes:\n  - name: n\n    host: local\n')
  })

  it('a single label written as a string', () => {
    const text = 'nodes:\n  - name: n\n    host: local\n    labels: macos # just one\n'
    expect(edited(text, 'n', { labels: ['MacOS'] })).toBe(text)
    expect(edited(text, 'n', { labels: ['linux'] })).toBe(text.replace('macos', 'linux'))
    expect(edited(text, 'n', { labels: ['macos', 'arm64'] })).toBe(text.replace('macos', '[macos, arm64]'))
  })

  it('a node without labels gets a flow list', () => {
    const text = 'nodes:\n  - name: n\n    host: local\n'
    expect(edited(text, 'n', { labels: ['a', 'b-c'] })).toBe(text + '    labels: [a, b-c]\n')
  })

  it('a farm with health limits, farm-wide and on the node (its last key): edited, the limits kept', () => {
    const text = `health: # the farm's
  loadPerCore: 4
  diskFree: 5g
nodes:
  - name: n
    host: local
    labels: [linux]
    health:
      memoryUsedPct: 99 # a busy box
      # engineSlowMs: 3000
  - { name: m, host: local, health: { clockSkewMs: 60000 } }
`
    const out = edited(text, 'n', { labels: ['linux', 'gpu'], slots: 2, defaultImage: 'alpine:3' })
    expect(out).toBe(
      // After the last key's value: the comment line under it stays with the health block.
      replaced(text, 'labels: [linux]', 'labels: [linux, gpu]').replace(
        '# a busy box\n',
        '# a busy box\n    slots: 2\n    defaultImage: alpine:3\n',
      ),
    )
    const farm = loadFarmFile(path)
    expect(farm.health).toEqual({ loadPerCore: 4, diskFreeBytes: 5 * 1024 ** 3 })
    expect(nodeOf(farm, 'n')).toMatchObject({
      slots: 2,
      defaultImage: 'alpine:3',
      health: { memoryUsedPct: 99 },
    })
    expect(edited(out, 'm', { slots: 3 })).toBe(
      replaced(out, 'health: { clockSkewMs: 60000 } }', 'health: { clockSkewMs: 60000 }, slots: 3 }'),
    )
    expect(nodeOf(loadFarmFile(path), 'm').health).toEqual({ clockSkewMs: 60000 })
    expect(edited(out, 'n', { defaultImage: null })).toBe(out.replace('    defaultImage: alpine:3\n', ''))
  })

  it('a file without a final newline', () => {
    const text = 'nodes:\n  - name: n\n    host: local'
    expect(edited(text, 'n', { slots: 2 })).toBe(text + '\n    slots: 2')
  })

  it('CRLF line endings are kept', () => {
    const text = FARM.replace(/\n/g, '\r\n')
    const out = edited(text, 'mac', { slots: 2, labels: ['macos', 'signing', 'arm64', 'x'] })
    expect(out).toBe(replaced(text, '      - arm64\r\n', '      - arm64\r\n      - x\r\n    slots: 2\r\n'))
  })

  it('a multi-line flow list without comments is written on one line', () => {
    const text =
      'nodes:\n  - name: n\n    host: local\n    labels: [\n      a,\n      b,\n    ]\n    slots: 1\n'
    expect(edited(text, 'n', { labels: ['a', 'c'] })).toBe(
      'nodes:\n  - name: n\n    host: local\n    labels: [a, c]\n    slots: 1\n',
    )
  })

  it('the file mode is kept, and a symbolic link stays a link to the file it named', () => {
    writeFileSync(join(dir, 'real.yml'), FARM)
    chmodSync(join(dir, 'real.yml'), 0o640)
    symlinkSync('real.yml', path)
    const farm = editNodeInFarmFile(loadFarmFile(path), 'builder-1', { slots: 6 })
    expect(fs.lstatSync(path).isSymbolicLink()).toBe(true)
    expect(statSync(join(dir, 'real.yml')).mode & 0o7777).toBe(0o640)
    expect(readFileSync(join(dir, 'real.yml'), 'utf8')).toBe(FARM.replace('slots: 4', 'slots: 6'))
    expect(farm.file).toBe(path)
    expect(readdirSync(dir).sort()).toEqual(['farm.yml', 'real.yml'])
  })
})

describe('editNodeInFarmFile: refusals write nothing', () => {
  it('the embedded default farm has no file', () => {
    const farm: Farm = { ...parseFarm('/x.yml', 'nodes:\n  - name: local\n    host: local\n'), file: null }
    const e = refusal(farm, 'local', { slots: 2 })
    expect(e.code).toBe('no-file')
    expect(e.message).toMatch(
      /^there is no farm file to write: this is the built-in farm .*Create one .*resources\/farm\.example\.yml.*--farm <file>.*YARDMASTER_FARM=<file>/s,
    )
  })

  it('an unknown node, with the names there are', () => {
    const farm = farmWith(FARM)
    const e = refusal(farm, 'builder1', { slots: 2 })
    expect(e.code).toBe('unknown-node')
    expect(e.message).toBe(
      `node "builder1" is not in the farm file ${path}; did you mean "builder-1"? (its nodes: builder-1, mac, here)`,
    )
    expect(refusal(farm, 'zzz', { slots: 2 }).message).toContain('not in the farm file')
  })

  it.each<[string, unknown, RegExp]>([
    ['empty', {}, /changes nothing: give labels, slots or defaultImage/],
    ['all undefined', { labels: undefined }, /changes nothing/],
    ['not an object', null, /a node edit is an object/],
    ['a list', [], /a node edit is an object/],
    ['another field', { host: 'x' }, /"host" cannot be edited here \(only labels, slots, defaultImage\)/],
    ['zero slots', { slots: 0 }, /slots must be a whole number of at least 1, not 0/],
    ['negative slots', { slots: -2 }, /at least 1, not -2/],
    ['fractional slots', { slots: 1.5 }, /not 1.5/],
    ['slots as a string', { slots: '2' }, /not "2"/],
    ['slots NaN', { slots: NaN }, /not null/],
    ['labels not a list', { labels: 'linux' }, /labels must be a list of strings/],
    ['an empty label', { labels: ['a', ''] }, /a label cannot be empty/],
    ['a label with a space', { labels: ['linux gpu'] }, /label "linux gpu" may not contain spaces or commas/],
    ['a label with a comma', { labels: ['linux,gpu'] }, /may not contain spaces or commas/],
    ['a label with a control character', { labels: ['a\u0007'] }, /control characters/],
    ['a label not a string', { labels: [3] }, /label 3 is not a string/],
    ['an empty image', { defaultImage: '' }, /defaultImage must be an image name/],
    ['an image with a space', { defaultImage: 'debian bookworm' }, /defaultImage must be an image name/],
    ['an image not a string', { defaultImage: 7 }, /not 7/],
  ])('an invalid edit: %s', (_, edit, message) => {
    const farm = farmWith(FARM)
    const e = refusal(farm, 'builder-1', edit as NodeEdit)
    expect(e.code).toBe('invalid-edit')
    expect(e.message).toMatch(message)
    expect(readFileSync(path, 'utf8')).toBe(FARM)
  })

  it('every problem at once', () => {
    const e = refusal(farmWith(FARM), 'builder-1', { slots: 0, labels: [''] })
    expect(e.message).toBe(
      'the node edit is invalid; nothing was written: a label cannot be empty; slots must be a whole number of at least 1, not 0',
    )
  })

  it('the file changed on disk since it was loaded: reload', () => {
    const farm = farmWith(FARM)
    const theirs = FARM.replace('# the big one', '# the big one, edited in vim')
    writeFileSync(path, theirs)
    const e = refusal(farm, 'builder-1', { slots: 2 })
    expect(e.code).toBe('changed-on-disk')
    expect(e.message).toBe(
      `the farm file ${path} changed on disk since it was loaded; nothing was written. Reload the farm, check the node, and make the edit again`,
    )
    expect(readFileSync(path, 'utf8')).toBe(theirs)
    expect(editNodeInFarmFile(loadFarmFile(path), 'builder-1', { slots: 2 }).nodes[0]!.slots).toBe(2)
  })

  it('a farm parsed from text has no digest to check against', () => {
    writeFileSync(path, FARM)
    const e = refusal(parseFarm(path, FARM), 'builder-1', { slots: 2 })
    expect(e.code).toBe('changed-on-disk')
    expect(e.message).toContain('(or this farm was not loaded from it with its digest)')
  })

  it('the file is gone', () => {
    const farm = farmWith(FARM)
    rmSync(path)
    const e = refusal(farm, 'builder-1', { slots: 2 })
    expect(e.code).toBe('changed-on-disk')
    expect(e.message).toMatch(
      /cannot read the farm file .*ENOENT.*; nothing was written. Check that it is still there and reload/,
    )
  })

  it('the file is now a directory', () => {
    const farm = farmWith(FARM)
    rmSync(path)
    fs.mkdirSync(path)
    const e = refusal(farm, 'builder-1', { slots: 2 })
    expect(e.code).toBe('changed-on-disk')
    expect(e.message).toMatch(/cannot read the farm file .*EISDIR/)
  })

  it('the file changes between reading it and renaming the new one over it', () => {
    const farm = farmWith(FARM)
    const theirs = FARM + '# theirs\n'
    hooks.stat = () => {
      hooks.stat = undefined
      writeFileSync(path, theirs)
    }
    const e = refusal(farm, 'builder-1', { slots: 2 })
    expect(e.code).toBe('changed-on-disk')
    expect(e.message).toBe(
      `the farm file ${path} changed on disk while the edit was being written; nothing was written. Reload the farm and make the edit again`,
    )
    expect(readFileSync(path, 'utf8')).toBe(theirs)
    expect(readdirSync(dir)).toEqual(['farm.yml'])
  })

  it('a file that is not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\n' + FARM)])
    writeFileSync(path, bytes)
    const e = refusal(loadFarmFile(path), 'builder-1', { slots: 2 })
    expect(e.code).toBe('invalid-edit')
    expect(e.message).toContain('is not valid UTF-8')
    expect(readFileSync(path).equals(bytes)).toBe(true)
  })

  it('a flow list with comments inside', () => {
    const text = 'nodes:\n  - name: n\n    host: local\n    labels: [\n      a, # first\n      b,\n    ]\n'
    const e = refusal(farmWith(text), 'n', { labels: ['a'] })
    expect(e.code).toBe('invalid-edit')
    expect(e.message).toMatch(/flow list \(\[…\]\) with comments inside.*block list/)
    expect(readFileSync(path, 'utf8')).toBe(text)
  })
})

describe('writing: atomic, and failures leave the file as it was', () => {
  /** The real calls, with some replaced. */
  const io = (over: Partial<WriteIo>): WriteIo => ({ ...fs, ...over }) as WriteIo
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })

  it.each<[string, Partial<WriteIo>, RegExp]>([
    [
      'a full disk while writing',
      {
        writeFileSync: () => {
          throw enospc()
        },
      },
      /no space left on device, write\); it was left as it was: the disk \(or your quota\) is full; free some space/,
    ],
    [
      'a full disk at fsync',
      {
        fsyncSync: () => {
          throw enospc()
        },
      },
      /the disk \(or your quota\) is full/,
    ],
    [
      'a read-only file system',
      {
        openSync: () => {
          throw Object.assign(new Error('EROFS: read-only file system, open'), { code: 'EROFS' })
        },
      },
      /read-only file system, open\); it was left as it was: it is on a read-only file system; edit it where it can be written/,
    ],
    [
      'a rename that fails',
      {
        renameSync: () => {
          throw Object.assign(new Error('EXDEV: odd'), { code: 'EXDEV' })
        },
      },
      /\(EXDEV: odd\); it was left as it was: try again, or edit the file by hand/,
    ],
    [
      'no code at all',
      {
        renameSync: () => {
          throw new Error('boom')
        },
      },
      /\(boom\); it was left as it was: try again/,
    ],
  ])('%s', (_, over, message) => {
    writeFileSync(path, FARM)
    let err: unknown
    try {
      writeFileAtomically(path, 'new', undefined, io(over))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(FarmEditError)
    expect((err as FarmEditError).code).toBe('write-failed')
    expect((err as Error).message).toMatch(message)
    expect(readFileSync(path, 'utf8')).toBe(FARM)
    expect(readdirSync(dir)).toEqual(['farm.yml'])
  })

  it('a close that fails after a failed write still removes the new file', () => {
    writeFileSync(path, FARM)
    const over = io({
      writeFileSync: () => {
        throw enospc()
      },
      closeSync: () => {
        throw new Error('EBADF')
      },
    })
    expect(() => writeFileAtomically(path, 'new', undefined, over)).toThrow(/disk \(or your quota\) is full/)
    expect(readdirSync(dir)).toEqual(['farm.yml'])
  })

  it('a new file that cannot be removed is left, never the farm file', () => {
    writeFileSync(path, FARM)
    const over = io({
      renameSync: () => {
        throw new Error('boom')
      },
      unlinkSync: () => {
        throw new Error('EPERM')
      },
    })
    expect(() => writeFileAtomically(path, 'new', undefined, over)).toThrow(/boom/)
    expect(readFileSync(path, 'utf8')).toBe(FARM)
    const stray = readdirSync(dir).filter((f) => f !== 'farm.yml')
    expect(stray).toEqual([expect.stringMatching(/^\.farm\.yml\.\d+-[0-9a-f]{8}\.tmp$/)])
    expect(readFileSync(join(dir, stray[0]!), 'utf8')).toBe('new')
  })

  it('the owner is kept when it may be, and not insisted on when it may not', () => {
    writeFileSync(path, FARM)
    writeFileAtomically(
      path,
      'new',
      undefined,
      io({
        fchownSync: () => {
          throw new Error('EPERM')
        },
      }),
    )
    expect(readFileSync(path, 'utf8')).toBe('new')
  })

  it('a directory that cannot be written: a clear error, the file as it was', (ctx) => {
    writeFileSync(path, FARM)
    const farm = loadFarmFile(path)
    // Root writes into a 0555 directory anyway; an immutable one (chattr +i) stops it too.
    const root = process.getuid?.() === 0
    try {
      if (root) execFileSync('chattr', ['+i', dir], { stdio: 'ignore' })
      else chmodSync(dir, 0o555)
    } catch {
      ctx.skip('cannot make a directory read-only here (root, without chattr +i)')
    }
    try {
      const e = refusal(farm, 'builder-1', { slots: 2 })
      expect(e.code).toBe('write-failed')
      expect(e.message).toMatch(
        new RegExp(
          `cannot write the farm file ${path} \\((EACCES|EPERM): .*\\); it was left as it was: .*so ${dir} must be writable`,
        ),
      )
    } finally {
      if (root) execFileSync('chattr', ['-i', dir])
      else chmodSync(dir, 0o755)
    }
    expect(readFileSync(path, 'utf8')).toBe(FARM)
    expect(readdirSync(dir)).toEqual(['farm.yml'])
  })
})

describe('property: any labels survive the round trip, and the rest of the file stays', () => {
  // Labels as the console may send them: no spaces, no commas; YAML's special characters welcome.
  const label = fc.stringMatching(/^[A-Za-z0-9._:=/@+~#&*!%'"[\]{}|>?-]{1,10}$/)
  const labels = fc.array(label, { maxLength: 6 })
  const expectedLabels = (ls: string[]) => [...new Set(['self-hosted', ...ls.map((l) => l.toLowerCase())])]
  const others = (farm: Farm, name: string) =>
    farm.nodes.filter((n) => n.name !== name).map((n) => ({ ...n, source: null }))
  const original = parseFarm(join(tmpdir(), 'x'), FARM)

  it('a flow list: only its line changes, its comment kept', () => {
    fc.assert(
      fc.property(labels, (ls) => {
        const farm = editNodeInFarmFile(farmWith(FARM), 'builder-1', { labels: ls })
        expect(nodeOf(farm, 'builder-1').labels).toEqual(expectedLabels(ls))
        const [before, after] = [FARM.split('\n'), readFileSync(path, 'utf8').split('\n')]
        expect(after).toHaveLength(before.length)
        const at = before.findIndex((l) => l.startsWith('    labels: [Linux'))
        expect(after[at]).toMatch(/^ {4}labels: \[.*\] # what jobs may ask for$/)
        expect(after.filter((_, i) => i !== at)).toEqual(before.filter((_, i) => i !== at))
        expect(others(farm, 'builder-1')).toEqual(others(original, 'builder-1'))
      }),
      { numRuns: 60 },
    )
  })

  it('a block list: only the lines of its items change, comment lines kept', () => {
    const head = FARM.slice(0, FARM.indexOf('    labels:\n      - macos'))
    const tail = FARM.slice(FARM.indexOf('  - { name: here'))
    fc.assert(
      fc.property(labels, (ls) => {
        const farm = editNodeInFarmFile(farmWith(FARM), 'mac', { labels: ls })
        expect(nodeOf(farm, 'mac').labels).toEqual(expectedLabels(ls))
        const out = readFileSync(path, 'utf8')
        expect(out.startsWith(head + (ls.length ? '    labels:\n' : '    labels: []\n'))).toBe(true)
        expect(out.endsWith(tail)).toBe(true)
        expect(out).toContain('      # signing needs the keychain\n')
        if (ls.some((l) => l.toLowerCase() === 'macos')) expect(out).toContain(' # the OS\n')
        expect(others(farm, 'mac')).toEqual(others(original, 'mac'))
      }),
      { numRuns: 60 },
    )
  })
})
