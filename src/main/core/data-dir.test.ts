import { homedir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { defaultDataDir } from './data-dir'

describe('defaultDataDir', () => {
  it('uses ~/.config/Yardmaster on Linux, or $XDG_CONFIG_HOME', () => {
    expect(defaultDataDir({}, 'linux')).toBe(join(homedir(), '.config', 'Yardmaster'))
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/xdg' }, 'linux')).toBe('/xdg/Yardmaster')
  })

  it('uses ~/Library/Application Support/Yardmaster on macOS', () => {
    expect(defaultDataDir({}, 'darwin')).toBe(join(homedir(), 'Library', 'Application Support', 'Yardmaster'))
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/xdg' }, 'darwin')).toBe(
      join(homedir(), 'Library', 'Application Support', 'Yardmaster'),
    )
  })

  it('uses %APPDATA%\\Yardmaster on Windows, with the usual fallback', () => {
    expect(defaultDataDir({ APPDATA: 'C:/Users/me/AppData/Roaming' }, 'win32')).toBe(
      join('C:/Users/me/AppData/Roaming', 'Yardmaster'),
    )
    expect(defaultDataDir({}, 'win32')).toBe(join(homedir(), 'AppData', 'Roaming', 'Yardmaster'))
  })

  it('lets YARDMASTER_DATA_DIR override every platform', () => {
    for (const os of ['linux', 'darwin', 'win32', 'freebsd'])
      expect(
        defaultDataDir({ YARDMASTER_DATA_DIR: '/data/ym', APPDATA: 'x', XDG_CONFIG_HOME: 'y' }, os),
      ).toBe('/data/ym')
  })

  it('ignores an empty YARDMASTER_DATA_DIR', () => {
    expect(defaultDataDir({ YARDMASTER_DATA_DIR: '' }, 'linux')).toBe(
      join(homedir(), '.config', 'Yardmaster'),
    )
  })

  it('treats other Unixes like Linux', () => {
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/xdg' }, 'freebsd')).toBe('/xdg/Yardmaster')
  })

  it('reads the real environment and platform by default', () => {
    const saved = process.env.YARDMASTER_DATA_DIR
    process.env.YARDMASTER_DATA_DIR = '/from/env'
    try {
      expect(defaultDataDir()).toBe('/from/env')
    } finally {
      if (saved === undefined) delete process.env.YARDMASTER_DATA_DIR
      else process.env.YARDMASTER_DATA_DIR = saved
    }
  })
})
