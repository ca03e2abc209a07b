import { describe, expect, it } from 'vitest'
import { formatSize, parseSize, resourceNeeds } from './container-options'

describe('container options', () => {
  it('reads --cpus, --memory/-m and --gpus, in both flag forms, ignoring other flags', () => {
    expect(resourceNeeds('--cpus 2 --memory=4g --gpus all --privileged -v /a:/b')).toEqual({
      cpus: 2,
      memoryBytes: 4 * 1024 ** 3,
      gpus: 'all',
    })
    expect(resourceNeeds('-m 512m --cpus=0.5 --gpus count=2')).toEqual({
      cpus: 0.5,
      memoryBytes: 512 * 1024 ** 2,
      gpus: 2,
    })
    expect(resourceNeeds(null)).toEqual({ cpus: null, memoryBytes: null, gpus: null })
  })

  it('refuses values that make no sense, saying what it wants', () => {
    expect(() => resourceNeeds('--cpus lots')).toThrow('--cpus takes a positive number, not "lots"')
    expect(() => resourceNeeds('--memory 4q')).toThrow('--memory takes a size such as 512m or 4g, not "4q"')
    expect(() => resourceNeeds('--gpus -1')).toThrow('--gpus takes "all" or a count, not "-1"')
  })

  it('parses and prints sizes', () => {
    expect(parseSize('16g')).toBe(16 * 1024 ** 3)
    expect(parseSize('1.5G')).toBe(1.5 * 1024 ** 3)
    expect(parseSize('100')).toBe(100)
    expect(parseSize('lots')).toBeNull()
    expect(formatSize(16 * 1024 ** 3)).toBe('16g')
    expect(formatSize(1000)).toBe('1000b')
  })
})
