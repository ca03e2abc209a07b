// `npm start`: build, then open the desktop app on the embedded default farm (this machine).
// Where the Electron binary is missing (installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1, or a
// machine without a display), it says so and serves the same UI to a browser instead.
import { spawnSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { cpSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

const require = createRequire(import.meta.url)
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts }).status === 0

if (!run('npx', ['electron-vite', 'build'])) process.exit(1)

let electron = null
try {
  electron = require('electron') // the path of the binary, when it was downloaded
} catch {
  /* not installed */
}
const hasDisplay = process.platform !== 'linux' || Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY)
if (!electron || !existsSync(electron) || !hasDisplay) {
  console.log(
    !electron || !existsSync(electron)
      ? '\nThe Electron binary is not installed here; serving the same console to your browser instead.'
      : '\nNo display; serving the console to your browser instead.',
  )
  const child = spawn(process.execPath, ['bin/yardmaster.cjs', 'serve', ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  child.on('exit', (code) => process.exit(code ?? 0))
} else {
  // better-sqlite3 is native: the CLI and tests use the build for Node in node_modules; the app
  // gets its own build for Electron's ABI, kept aside so both work from one checkout.
  const electronVersion = require('electron/package.json').version
  const cache = resolve('node_modules/.cache/yardmaster-electron', electronVersion)
  const binding = join(cache, 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')
  if (!existsSync(binding)) {
    console.log(`building better-sqlite3 for Electron ${electronVersion} (once)...`)
    mkdirSync(cache, { recursive: true })
    cpSync(dirname(require.resolve('better-sqlite3/package.json')), join(cache, 'better-sqlite3'), {
      recursive: true,
    })
    const nodeGyp = join(
      dirname(process.env.npm_execpath ?? ''),
      '..',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    )
    const ok = run(
      process.execPath,
      [
        nodeGyp,
        'rebuild',
        '--release',
        `--target=${electronVersion}`,
        '--runtime=electron',
        '--dist-url=https://electronjs.org/headers',
      ],
      { cwd: join(cache, 'better-sqlite3') },
    )
    if (!ok) process.exit(1)
  }
  const child = spawn(electron, ['.', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, YARDMASTER_SQLITE_BINDING: binding },
  })
  child.on('exit', (code) => process.exit(code ?? 0))
}
