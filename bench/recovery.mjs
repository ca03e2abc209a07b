// Benchmark: recovery after `kill -9` of a console with jobs running. A console runs BENCH_JOBS
// (default 20) jobs over the three lab hosts, each printing a numbered line every 0.5 s for 30 s;
// once every job has printed, the console is killed (SIGKILL) and a new one is started on the same
// data dir. Measured, from the new console's start:
//   servingMs:   until it serves (prints its URL): the baseline, what any start costs
//   takenOverMs: until every running job is taken over (its log says so)
//   complete:    the run then completes as one run, each job's first attempt, every line once
// Issue 11's target: every running job taken over within 10 s of the start, with 20 jobs.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { spawn } from 'node:child_process'
import { setTimeout } from 'node:timers/promises'
import { startConsole } from './lib/console.mjs'

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3')

const jobs = Number(process.env.BENCH_JOBS ?? 20)
const lines = 60
const labDir = process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab'
const lab = JSON.parse(readFileSync(join(labDir, 'lab.json'), 'utf8'))
const dir = mkdtempSync(join(tmpdir(), 'ym-bench-recovery-'))
const farmFile = join(dir, 'farm.yml')
writeFileSync(
  farmFile,
  readFileSync(lab.farmFile, 'utf8')
    .replace(/slots: \d+/g, `slots: ${Math.ceil(jobs / 3)}`)
    .replace(/labels: \[linux, (\w+)\]/g, 'labels: [linux, $1, bench]'),
)
const printer = `i=1; while [ $i -le ${lines} ]; do echo "job $N line $i"; i=$((i+1)); sleep 0.5; done`
const workflow = join(dir, 'recovery.yml')
writeFileSync(
  workflow,
  `name: recovery bench\non: push\njobs:\n  live:\n    runs-on: bench\n    container: lab/busybox:1\n    strategy:\n      matrix:\n        n: [${Array.from({ length: jobs }, (_, i) => i + 1).join(', ')}]\n    steps:\n      - run: ${JSON.stringify(printer)}\n        env:\n          N: \${{ matrix.n }}\n`,
)
const dataDir = join(dir, 'console')

/** Polls `check` (every 100 ms) until it holds; throws after `ms`. */
async function until(check, what, ms = 180_000) {
  const t0 = performance.now()
  while (!check()) {
    if (performance.now() - t0 > ms) throw new Error(`never happened: ${what}`)
    await setTimeout(100)
  }
}

let second = null
let result
try {
  const first = await startConsole(dataDir, farmFile)
  const follower = spawn(process.execPath, ['bin/yardmaster.cjs', 'run', workflow, '--data-dir', dataDir], {
    stdio: 'ignore',
  })
  const db = new Database(join(dataDir, 'yardmaster.db'), { readonly: true, fileMustExist: true })
  const printing = db.prepare(
    "SELECT COUNT(DISTINCT job_id) AS n FROM log_lines WHERE run_id = 1 AND stream = 'stdout'",
  )
  const takenOver = db.prepare(
    "SELECT COUNT(DISTINCT job_id) AS n FROM log_lines WHERE run_id = 1 AND stream = 'system' AND text LIKE 'taken over%'",
  )
  await until(() => printing.get().n === jobs, `${jobs} jobs printing`)
  first.kill('SIGKILL')
  follower.kill('SIGKILL')
  await new Promise((r) => first.once('exit', r))

  const t0 = performance.now()
  second = await startConsole(dataDir, farmFile)
  const servingMs = performance.now() - t0
  await until(() => takenOver.get().n === jobs, `${jobs} jobs taken over`)
  const takenOverMs = performance.now() - t0
  await until(
    () => db.prepare('SELECT state FROM runs WHERE id = 1').get().state !== 'running',
    'the run finishes',
    300_000,
  )
  const state = db.prepare('SELECT state FROM runs WHERE id = 1').get().state
  const runs = db.prepare('SELECT COUNT(*) AS n FROM runs').get().n
  const attempts = db.prepare('SELECT MAX(number) AS n FROM attempts').get().n
  const stored = db
    .prepare(
      "SELECT j.job_key AS k, l.text AS t FROM log_lines l JOIN jobs j ON j.id = l.job_id WHERE l.run_id = 1 AND l.stream = 'stdout' ORDER BY l.seq",
    )
    .all()
  let complete = state === 'succeeded' && runs === 1 && attempts === 1
  for (let n = 1; n <= jobs && complete; n++) {
    const mine = stored.filter((r) => r.k === `live (${n})`).map((r) => r.t)
    complete = mine.length === lines && mine.every((t, i) => t === `job ${n} line ${i + 1}`)
  }
  db.close()
  const r1 = (x) => Math.round(x)
  result = {
    bench: 'recovery',
    jobs,
    servingMs: r1(servingMs),
    takenOverMs: r1(takenOverMs),
    targetMs: 10_000,
    complete,
  }
} finally {
  second?.kill('SIGTERM')
}
console.log(JSON.stringify(result))
