// Runs after `npm install` / `npm ci`. Electron's own install script (which downloads the
// Electron binary from GitHub) is denied in package.json's `allowScripts`: where GitHub cannot be
// reached it failed, and npm then rolled back the whole install. Here the same download is tried,
// and a failure is only a note: everything but the desktop window works without the binary, and
// `npm start` serves the console to a browser instead.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
let electronDir
try {
  electronDir = dirname(require.resolve('electron/package.json'))
} catch {
  process.exit(0) // production install without devDependencies: nothing to fetch
}

if (process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) {
  console.log('yardmaster: ELECTRON_SKIP_BINARY_DOWNLOAD is set; the Electron binary was not downloaded.')
  console.log('yardmaster: `npm start` will serve the console to your browser instead.')
  process.exit(0)
}

const r = spawnSync(process.execPath, [join(electronDir, 'install.js')], {
  encoding: 'utf8',
  timeout: 10 * 60_000,
})
const binary = (() => {
  try {
    return require('electron') // the binary's path; throws when it was never downloaded
  } catch {
    return null
  }
})()
if (r.status === 0 && binary && existsSync(binary)) process.exit(0)

const reason =
  (r.stderr || r.stdout || '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /error/i.test(l)) ?? (r.error ? r.error.message : `exit ${r.status ?? r.signal}`)
console.log(`yardmaster: the Electron binary could not be downloaded (${reason}).`)
console.log('yardmaster: everything else is installed: `npm start` serves the console to your browser,')
console.log(
  'yardmaster: and `npm test` runs the whole suite. To get the desktop window later: `npm run electron:fetch`.',
)
