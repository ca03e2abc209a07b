// `npm run bench -- <name>`: runs bench/<name>.mjs against the built app and the lab.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'

const name = process.argv[2]
const known = readdirSync('bench')
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.replace(/\.mjs$/, ''))
if (!name || !known.includes(name)) {
  console.error(`usage: npm run bench -- <name>; benchmarks: ${known.join(', ')}`)
  process.exit(2)
}
const quiet = { stdio: ['ignore', 'ignore', 'inherit'] }
if (spawnSync('npx', ['electron-vite', 'build'], quiet).status !== 0) process.exit(1)
// Benchmarks of pure code (planning, the scheduler over a simulated farm) need no lab.
const pure = new Set(['plan', 'schedule'])
if (
  !pure.has(name) &&
  (!existsSync(process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab') ||
    process.env.BENCH_LAB_UP !== '0')
) {
  if (spawnSync('bash', ['test/lab/up.sh'], quiet).status !== 0) process.exit(1)
}
const r = spawnSync(process.execPath, [`bench/${name}.mjs`, ...process.argv.slice(3)], { stdio: 'inherit' })
process.exit(r.status ?? 1)
