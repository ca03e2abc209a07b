/**
 * Where history lives by default: the platform's per-user app data folder, the same folder
 * Electron's app.getPath('userData') gives for productName "Yardmaster", so the desktop app and
 * the CLI share one history.
 */
import { homedir, platform } from 'node:os'
import { join } from 'node:path'

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, os: string = platform()): string {
  if (env.YARDMASTER_DATA_DIR) return env.YARDMASTER_DATA_DIR
  if (os === 'darwin') return join(homedir(), 'Library', 'Application Support', 'Yardmaster')
  if (os === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'Yardmaster')
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'Yardmaster')
}
