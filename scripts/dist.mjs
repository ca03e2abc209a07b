// `npm run dist [-- electron-builder args]`: build, then package the desktop app with
// electron-builder (electron-builder.yml: Linux AppImage + deb, macOS dmg, Windows nsis).
// Packaging needs the Electron binary; where it could not be downloaded (installed with
// ELECTRON_SKIP_BINARY_DOWNLOAD=1, or no access to GitHub) this says so and exits 2.
//
// electron-builder rebuilds native modules for Electron's ABI in node_modules itself: the
// Node builds the CLI and tests use are saved first and put back afterwards.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'

const require = createRequire(import.meta.url)
const args = process.argv.slice(2)

if (spawnSync(process.execPath, [binOf('electron-vite'), 'build'], { stdio: 'inherit' }).status !== 0)
  process.exit(1)

const electronVersion = require('electron/package.json').version
const electronDist = electronDistArg(args)
if (!electronDist && !electronBinary()) {
  console.error(`
Packaging needs the Electron binary (Electron ${electronVersion}), which is not on this machine:
node_modules/electron has no binary (it could not be downloaded here, or its download was skipped).
The app is built in out/, but not packaged.

To package, either
  - on a machine that reaches GitHub: npm run electron:fetch, then npm run dist
    (the download is cached in ~/.cache/electron, where electron-builder finds it again);
  - from a mirror: ELECTRON_MIRROR=<mirror URL> npm run electron:fetch, then
    ELECTRON_MIRROR=<mirror URL> npm run dist;
  - or with a local copy of Electron ${electronVersion}, unpacked, for the target platform:
    npm run dist -- -c.electronDist=/path/to/electron (electron-builder's electronDist setting).
`)
  process.exit(2)
}
if (electronDist && !existsSync(electronDist)) {
  console.error(`\nelectronDist ${electronDist} does not exist.\n`)
  process.exit(2)
}

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12))
  console.warn(
    `note: @electron/rebuild, which rebuilds the native modules, asks for Node 22.12 or later; this is Node ${process.versions.node}.`,
  )

const saved = saveNativeBuilds()
let code = 1
try {
  code = await runElectronBuilder(args)
} finally {
  saved.restore()
}
process.exit(code)

/** The path of the Electron binary when it was downloaded, else null. */
function electronBinary() {
  try {
    const path = require('electron') // throws when the binary was never downloaded
    return typeof path === 'string' && existsSync(path) ? path : null
  } catch {
    return null
  }
}

/** `-c.electronDist=DIR`, `--config.electronDist=DIR` or the same with DIR as the next argument. */
function electronDistArg(argv) {
  for (let i = 0; i < argv.length; i++) {
    const m = /^(?:-c|--config)\.electronDist(?:=(.*))?$/.exec(argv[i])
    if (m) return resolve(m[1] ?? argv[i + 1] ?? '')
  }
  return null
}

/** The script of a package's command of the same name (run with this Node, on every platform). */
function binOf(name) {
  const { bin } = require(`${name}/package.json`)
  return join(dirname(require.resolve(`${name}/package.json`)), typeof bin === 'string' ? bin : bin[name])
}

function runElectronBuilder(argv) {
  const child = spawn(process.execPath, [binOf('electron-builder'), ...argv], { stdio: 'inherit' })
  // Ctrl-C reaches electron-builder too; we stay to put the native builds back.
  const ignore = () => {}
  process.on('SIGINT', ignore)
  process.on('SIGTERM', ignore)
  return new Promise((done) => {
    child.on('error', (err) => {
      console.error(`could not start electron-builder: ${err.message}`)
      done(1)
    })
    child.on('exit', (status, signal) => done(status ?? (signal ? 1 : 0)))
  })
}

/**
 * Copies aside every built .node file in node_modules (better-sqlite3, cpu-features, ssh2's
 * crypto), so that after electron-builder's in-place rebuild the checkout gets its Node builds
 * back; .node files the rebuild added are removed.
 */
function saveNativeBuilds() {
  const root = resolve('node_modules')
  const before = nativeFiles(root)
  const backup = mkdtempSync(join(tmpdir(), 'yardmaster-dist-'))
  for (const file of before) {
    const to = join(backup, relative(root, file))
    mkdirSync(dirname(to), { recursive: true })
    copyFileSync(file, to)
  }
  return {
    restore() {
      for (const file of nativeFiles(root)) if (!before.includes(file)) rmSync(file, { force: true })
      for (const file of before) {
        mkdirSync(dirname(file), { recursive: true })
        copyFileSync(join(backup, relative(root, file)), file)
      }
      rmSync(backup, { recursive: true, force: true })
    },
  }
}

/** Every `*.node` under a `build` folder in node_modules, except our cache (scripts/start.mjs's Electron build). */
function nativeFiles(nodeModules) {
  if (!existsSync(nodeModules)) return []
  return readdirSync(nodeModules, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.node') && !f.startsWith('.cache') && f.split(sep).includes('build'))
    .map((f) => join(nodeModules, f))
    .filter((f) => isFile(f))
}

function isFile(path) {
  try {
    return statSync(path).isFile()
  } catch {
    return false // a broken link
  }
}
