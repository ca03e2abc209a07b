// `npm test`: the whole suite. The system packages the lab and the browser tests need (installed
// here as root on Debian/Ubuntu), type checks and lint, build (the e2e and CLI tests use the built
// app), bring the lab up when it is not running (idempotent), then every vitest project with
// coverage of the orchestrator core. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process'
import { ensureSystemPackages } from './system-deps.mjs'

const step = (title, cmd, args) => {
  console.log(`\n▶ ${title}`)
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  if (r.status !== 0) {
    console.error(`\n✕ ${title} failed (exit ${r.status ?? r.signal})`)
    process.exit(r.status || 1)
  }
}

const extra = process.argv.slice(2)
console.log('\n▶ system packages')
if (!ensureSystemPackages()) process.exit(1)
step('type check', 'npx', ['tsc', '-p', 'tsconfig.node.json', '--noEmit'])
step('type check (renderer)', 'npx', ['tsc', '-p', 'tsconfig.web.json', '--noEmit'])
step('lint', 'npx', ['eslint', '.'])
step('format', 'npx', ['prettier', '--check', '.'])
step('build', 'npx', ['electron-vite', 'build'])
step('test lab up', 'bash', ['test/lab/up.sh'])
step('tests', 'npx', ['vitest', 'run', '--coverage', ...extra])
