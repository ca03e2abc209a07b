import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isMap, parseDocument, type Node } from 'yaml'
import { InvalidSourceError } from './source-error'
import {
  checkKeys,
  describe as describeNode,
  editDistance,
  loadYamlFile,
  suggest,
  YamlSource,
} from './yaml-source'

describe('editDistance', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('', '')).toBe(0)
    expect(editDistance('abc', 'abc')).toBe(0)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('abc', '')).toBe(3)
    expect(editDistance('needs', 'neds')).toBe(1)
    expect(editDistance('runs_on', 'runs-on')).toBe(1)
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(editDistance('biuld', 'build')).toBe(1) // a swap of neighbours is one edit
    expect(editDistance('jbos', 'jobs')).toBe(1)
    expect(editDistance('fish', 'bash')).toBe(2)
  })

  it('is symmetric', () => {
    for (const [a, b] of [
      ['flaw', 'lawn'],
      ['docker', 'dokcer'],
      ['x', 'yz'],
    ] as const)
      expect(editDistance(a, b)).toBe(editDistance(b, a))
  })
})

describe('suggest', () => {
  it('returns the closest candidate, ignoring case', () => {
    expect(suggest('RUNS-ON', ['runs-on', 'needs'])).toBe('runs-on')
    expect(suggest('knownhosts', ['knownHosts', 'nodes'])).toBe('knownHosts')
  })

  it('prefers the first of equally close candidates', () => {
    expect(suggest('ab', ['ax', 'ay'])).toBe('ax')
  })

  it('allows 2 edits for short words and a third of the length for long ones', () => {
    expect(suggest('abcxx', ['abcde'])).toBe('abcde')
    expect(suggest('abxxx', ['abcde'])).toBeNull()
    expect(suggest('abcdefghxxxx', ['abcdefghijkl'])).toBe('abcdefghijkl') // 4 edits, 12 letters
    expect(suggest('abcdefgxxxxx', ['abcdefghijkl'])).toBeNull()
  })

  it('returns null with no candidates', () => {
    expect(suggest('x', [])).toBeNull()
  })
})

describe('describe', () => {
  const node = (text: string) => parseDocument(text).contents as Node
  it('names the kind of value found', () => {
    expect(describeNode(null)).toBe('nothing')
    expect(describeNode(undefined)).toBe('nothing')
    expect(describeNode(node('{a: 1}'))).toBe('a mapping')
    expect(describeNode(node('[1]'))).toBe('a list')
    expect(describeNode(node('~'))).toBe('an empty value')
    expect(describeNode(node('12'))).toBe('number 12')
    expect(describeNode(node('yes please'))).toBe('string "yes please"')
    expect(describeNode(node('true'))).toBe('boolean true')
  })

  it('says an alias is not supported and what to write instead', () => {
    const alias = (
      parseDocument('a: &img node:20\nb: *img\n').contents as unknown as { items: { value: Node }[] }
    ).items[1]!.value
    expect(describeNode(alias)).toBe(
      'an alias (*img); YAML anchors and aliases are not supported, write the value out',
    )
  })
})

describe('loadYamlFile', () => {
  it('reports a file it cannot read as a problem at 1:1 of that file', () => {
    const read = () => 'never called'
    for (const [kind, what] of [
      ['farm', 'the farm file'],
      ['workflow', 'the workflow'],
    ] as const) {
      const err = (() => {
        try {
          loadYamlFile(kind, '/nowhere/file.yml', read)
        } catch (e) {
          return e as InvalidSourceError
        }
      })()
      expect(err).toBeInstanceOf(InvalidSourceError)
      expect(err!.problems).toEqual([
        {
          file: '/nowhere/file.yml',
          line: 1,
          col: 1,
          path: '',
          message: `cannot read ${what}: ENOENT: no such file or directory, open '/nowhere/file.yml'`,
        },
      ])
    }
  })
})

describe('loadYamlFile reading a file', () => {
  it('hands the file to the reader with positions in it, and throws every problem it reported', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ym-yaml-'))
    try {
      const file = join(dir, 'farm.yml')
      writeFileSync(file, '# the farm\nname: lab\nslots: -2\n')
      const read = (src: YamlSource) => {
        const e = src.entries(src.root, '', 'top')!
        const v = (k: string) => e.find((x) => x.key === k)!.value
        return { name: src.string(v('name'), 'name'), slots: src.integer(v('slots'), 'slots', 1) }
      }
      const err = (() => {
        try {
          loadYamlFile('farm', file, read)
        } catch (e) {
          return e as InvalidSourceError
        }
      })()
      expect(err!.problems).toEqual([
        {
          file,
          line: 3,
          col: 8,
          path: 'slots',
          message: 'expected a whole number of at least 1, found number -2',
        },
      ])
      writeFileSync(file, 'name: lab\nslots: 2\n')
      expect(loadYamlFile('farm', file, read)).toEqual({ name: 'lab', slots: 2 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('YamlSource', () => {
  it('reports YAML errors with their position and keeps no root', () => {
    const src = new YamlSource('f.yml', 'a: [1,\n')
    expect(src.root).toBeNull()
    expect(src.problems).toHaveLength(1)
    expect(src.problems[0]).toMatchObject({ file: 'f.yml', path: '' })
    expect(src.problems[0]!.message).not.toContain('\n')
  })

  it('reads strings, lists, maps and integers, reporting the wrong kinds', () => {
    const src = new YamlSource('f.yml', 's: 5\nl: [a, 1, [x]]\nm: {A: x, B: [1]}\ni: -1\nj: 3\n')
    const e = src.entries(src.root, '', 'top')!
    const v = (k: string) => e.find((x) => x.key === k)!.value
    expect(src.string(v('s'), 's')).toBe('5')
    expect(src.stringList(v('l'), 'l')).toEqual(['a', '1'])
    expect(src.stringMap(v('m'), 'm')).toEqual({ A: 'x' })
    expect(src.integer(v('i'), 'i', 0)).toBeNull()
    expect(src.integer(v('j'), 'j', 0)).toBe(3)
    expect(src.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`)).toEqual([
      '2:11 l[2]: expected a string, found a list',
      '3:14 m.B: expected a string, found a list',
      '4:4 i: expected a whole number of at least 0, found number -1',
    ])
  })

  it('reports at 1:1 when there is no node', () => {
    const src = new YamlSource('f.yml', 'a: 1\n')
    src.report(null, 'x', 'boom')
    expect(src.problems).toEqual([{ file: 'f.yml', line: 1, col: 1, path: 'x', message: 'boom' }])
  })

  it('checkKeys reports unsupported keys with their reason and unknown ones with a suggestion', () => {
    const src = new YamlSource('f.yml', 'nme: x\nif: y\nzzz: 1\nname: ok\n')
    expect(isMap(src.root)).toBe(true)
    checkKeys(src, src.entries(src.root, '', 'top')!, ['name', 'jobs'], '', {
      if: '"if" is not supported yet',
    })
    expect(src.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`)).toEqual([
      '1:1 nme: unknown key "nme"; did you mean "name"?',
      '2:1 if: "if" is not supported yet',
      '3:1 zzz: unknown key "zzz"; expected one of: name, jobs',
    ])
  })
})
