import { describe, expect, it } from 'vitest'
import { formatBytes, formatTable } from './text-table'

describe('formatTable', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      formatTable(
        ['NAME', 'CORES', 'LABELS'],
        [
          ['n1', '2', 'linux, general'],
          ['builder-10', '16', ''],
        ],
      ),
    ).toBe('NAME        CORES  LABELS\nn1          2      linux, general\nbuilder-10  16\n')
  })

  it('paints padded cells of body rows only', () => {
    const out = formatTable(['A', 'B'], [['x', 'y']], (r, c, s) => (c === 0 ? `<${s}>` : s))
    expect(out).toBe('A  B\n<x>  y\n')
  })

  it('prints the header alone for no rows', () => {
    expect(formatTable(['A', 'B'], [])).toBe('A  B\n')
  })
})

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [2 * 1024 ** 2, '2.0 MiB'],
    [25276510208, '23.5 GiB'],
    [5 * 1024 ** 4, '5.0 TiB'],
    [2 ** 60, '1024.0 PiB'],
    [null, '-'],
    [NaN, '-'],
  ])('%s is %s', (n, s) => expect(formatBytes(n)).toBe(s))
})
