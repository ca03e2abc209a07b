/**
 * Which IPC requests the Electron shell answers: only those from the top frame of one of its own
 * windows, showing its own renderer. Pure (no Electron), so unit tests can import it; index.ts
 * gathers the facts from the event and asks here.
 */
import { posix, win32 } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Envelope } from '../shared/api'

export interface SenderFacts {
  /** URL of the frame that sent the request; '' when the frame is gone (navigated, destroyed). */
  url: string
  /** The sender is the top (main) frame of a window this process created. */
  isOurMainFrame: boolean
  /** Absolute path of the bundled renderer (`out/renderer`, inside app.asar when packaged). */
  rendererDir: string
  /** The dev server's URL (electron-vite's ELECTRON_RENDERER_URL), or null. */
  devUrl: string | null
  /** `app.isPackaged`: a packaged build never trusts a dev server. */
  isPackaged: boolean
  /** Windows paths (drive letters, case-insensitive); defaults to the running platform. */
  windows?: boolean
}

/** True when the request may reach the backend. */
export function isAllowedSender(f: SenderFacts): boolean {
  if (!f.isOurMainFrame || !f.url) return false
  let url: URL
  try {
    url = new URL(f.url)
  } catch {
    return false
  }
  if (url.protocol === 'file:')
    return isFileInside(url, f.rendererDir, f.windows ?? process.platform === 'win32')
  if (f.isPackaged || !f.devUrl) return false
  const dev = parseHttpUrl(f.devUrl)
  return dev !== null && url.origin === dev.origin
}

/**
 * The dev server URL the window may load: electron-vite's ELECTRON_RENDERER_URL, only in an
 * unpackaged app and only as http(s). A packaged build always loads the bundled file.
 */
export function devRendererUrl(value: string | undefined, isPackaged: boolean): string | null {
  if (isPackaged || !value) return null
  return parseHttpUrl(value) ? value : null
}

/** The answer to a refused request, in the API's envelope; the backend is not called. */
export const REFUSED_SENDER: Envelope<never> = {
  ok: false,
  error: { name: 'Forbidden', message: 'refused: the request did not come from the Yardmaster window' },
}

function parseHttpUrl(value: string): URL | null {
  try {
    const u = new URL(value)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null
  } catch {
    return null
  }
}

function isFileInside(url: URL, dir: string, windows: boolean): boolean {
  // file://host/... is a network share, never our bundle.
  if (url.host !== '') return false
  const path = windows ? win32 : posix
  let file: string
  try {
    file = fileURLToPath(url, { windows }) // refuses encoded separators (%2F, %5C)
  } catch {
    return false
  }
  if (!path.isAbsolute(dir)) return false
  // win32.relative compares case-insensitively, as Windows paths are.
  const rel = path.relative(path.resolve(dir), path.resolve(file))
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel)
}
