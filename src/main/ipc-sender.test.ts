import { describe, expect, it } from 'vitest'
import { devRendererUrl, isAllowedSender, REFUSED_SENDER, type SenderFacts } from './ipc-sender'

const base: SenderFacts = {
  url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer/index.html',
  isOurMainFrame: true,
  rendererDir: '/opt/Yardmaster/resources/app.asar/out/renderer',
  devUrl: null,
  isPackaged: true,
  windows: false,
}
const allowed = (over: Partial<SenderFacts>) => isAllowedSender({ ...base, ...over })

describe('isAllowedSender', () => {
  it('accepts the bundled renderer in our main frame', () => {
    expect(allowed({})).toBe(true)
    expect(allowed({ url: `${base.url}#/nodes?x=1` })).toBe(true)
    expect(allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer/assets/a.js' })).toBe(true)
  })

  it('refuses anything but our main frame, whatever its URL', () => {
    expect(allowed({ isOurMainFrame: false })).toBe(false)
  })

  it('refuses a frame that is gone or has no usable URL', () => {
    expect(allowed({ url: '' })).toBe(false)
    expect(allowed({ url: 'about:blank' })).toBe(false)
    expect(allowed({ url: 'not a url' })).toBe(false)
    expect(allowed({ url: 'data:text/html,<p>hi' })).toBe(false)
  })

  it('refuses files outside the renderer folder', () => {
    expect(allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/main/index.js' })).toBe(false)
    expect(allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer' })).toBe(false) // the folder itself
    expect(allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer-evil/index.html' })).toBe(
      false,
    )
    expect(
      allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer/../../../../../etc/passwd' }),
    ).toBe(false)
    expect(allowed({ url: 'file:///tmp/index.html' })).toBe(false)
  })

  it('refuses encoded separators and network shares', () => {
    expect(
      allowed({ url: 'file:///opt/Yardmaster/resources/app.asar/out/renderer/..%2F..%2Fmain%2Findex.js' }),
    ).toBe(false)
    expect(
      allowed({ url: 'file://evil.example/opt/Yardmaster/resources/app.asar/out/renderer/index.html' }),
    ).toBe(false)
  })

  it('refuses everything when the renderer folder is not absolute', () => {
    expect(allowed({ rendererDir: 'out/renderer', url: 'file:///out/renderer/index.html' })).toBe(false)
  })

  it('treats Windows paths case-insensitively, with their drive letter', () => {
    const win = {
      windows: true,
      rendererDir: 'C:\\Program Files\\Yardmaster\\resources\\app.asar\\out\\renderer',
    }
    expect(
      allowed({
        ...win,
        url: 'file:///C:/Program%20Files/Yardmaster/resources/app.asar/out/renderer/index.html',
      }),
    ).toBe(true)
    expect(
      allowed({
        ...win,
        url: 'file:///c:/program%20files/yardmaster/resources/APP.ASAR/out/renderer/index.html',
      }),
    ).toBe(true)
    expect(
      allowed({
        ...win,
        url: 'file:///D:/Program%20Files/Yardmaster/resources/app.asar/out/renderer/index.html',
      }),
    ).toBe(false)
    expect(
      allowed({ ...win, url: 'file:///C:/Program%20Files/Yardmaster/resources/app.asar/out/main/index.js' }),
    ).toBe(false)
    expect(
      allowed({
        ...win,
        url: 'file:///C:/Program%20Files/Yardmaster/resources/app.asar/out/renderer/..%5Cmain',
      }),
    ).toBe(false)
  })

  describe('the dev server', () => {
    const dev = { isPackaged: false, devUrl: 'http://localhost:5173/' }

    it('is accepted in development, by origin', () => {
      expect(allowed({ ...dev, url: 'http://localhost:5173/' })).toBe(true)
      expect(allowed({ ...dev, url: 'http://localhost:5173/index.html#/runs' })).toBe(true)
    })

    it('is never accepted in a packaged build', () => {
      expect(allowed({ ...dev, isPackaged: true, url: 'http://localhost:5173/' })).toBe(false)
    })

    it('does not stretch to other origins', () => {
      expect(allowed({ ...dev, url: 'http://localhost:5174/' })).toBe(false)
      expect(allowed({ ...dev, url: 'https://localhost:5173/' })).toBe(false)
      expect(allowed({ ...dev, url: 'http://127.0.0.1:5173/' })).toBe(false)
      expect(allowed({ ...dev, url: 'http://localhost.evil.example:5173/' })).toBe(false)
      expect(allowed({ isPackaged: false, devUrl: null, url: 'http://localhost:5173/' })).toBe(false)
    })

    it('must itself be an http(s) URL', () => {
      expect(allowed({ isPackaged: false, devUrl: 'javascript:alert(1)', url: 'javascript:alert(1)' })).toBe(
        false,
      )
      expect(allowed({ isPackaged: false, devUrl: 'not a url', url: 'http://localhost:5173/' })).toBe(false)
    })

    it('still needs our main frame', () => {
      expect(allowed({ ...dev, isOurMainFrame: false, url: 'http://localhost:5173/' })).toBe(false)
    })
  })
})

describe('devRendererUrl', () => {
  it('is taken only in an unpackaged app', () => {
    expect(devRendererUrl('http://localhost:5173/', false)).toBe('http://localhost:5173/')
    expect(devRendererUrl('http://localhost:5173/', true)).toBeNull()
    expect(devRendererUrl(undefined, false)).toBeNull()
    expect(devRendererUrl('', false)).toBeNull()
  })

  it('is only ever http(s)', () => {
    expect(devRendererUrl('https://localhost:5173/', false)).toBe('https://localhost:5173/')
    expect(devRendererUrl('file:///tmp/evil.html', false)).toBeNull()
    expect(devRendererUrl('javascript:alert(1)', false)).toBeNull()
    expect(devRendererUrl('not a url', false)).toBeNull()
  })
})

describe('REFUSED_SENDER', () => {
  it('is an error envelope of the API', () => {
    expect(REFUSED_SENDER).toEqual({ ok: false, error: { name: 'Forbidden', message: expect.any(String) } })
  })
})
