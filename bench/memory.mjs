// Benchmark: the console's resident memory with many live jobs streaming logs. A console
// (`yardmaster serve`) runs one workflow whose matrix has BENCH_JOBS (default 50) instances spread
// over the three lab hosts, each printing a numbered line every 100 ms for BENCH_SECONDS (default
// 30); the console's resident set is sampled every 250 ms.
//   idleMb:     the console before the run
//   liveMaxMb:  the most while at least 90 % of the jobs were running at once
//   liveJobs:   the most jobs running at once (from the history)
//   complete:   every job's lines are in the history, each once
// Issue 11's target is under 300 MB with 50 live jobs. Each streaming step holds an SSH session;
// past one connection's MaxSessions (10) the pool opens more connections to the node.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { clearInterval, setInterval, setTimeout } from 'node:timers'
import { startConsole, submitRun } from './lib/console.mjs'

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3')

const jobs = Number(process.env.BENCH_JOBS ?? 50)
const seconds = Number(process.env.BENCH_SECONDS ?? 30)
// A line every 100 ms: a busy build's pace. (Every 10 ms, the lab's 2-core machine spends itself
// forking `sleep` in 50 containers, which says nothing about the console.)
const perJob = seconds * 10
const labDir = process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab'
const lab = JSON.parse(readFileSync(join(labDir, 'lab.json'), 'utf8'))
const dir = mkdtempSync(join(tmpdir(), 'ym-bench-memory-'))

// The lab's farm with every host taking a third of the jobs, all under one label.
const perHost = Math.ceil(jobs / 3)
const farmFile = join(dir, 'farm.yml')
writeFileSync(
  farmFile,
  readFileSync(lab.farmFile, 'utf8')
    .replace(/slots: \d+/g, `slots: ${perHost}`)
    .replace(/labels: \[linux, (\w+)\]/g, 'labels: [linux, $1, bench]'),
)
const printer = `i=1; while [ $i -le ${perJob} ]; do echo "job $N line $i of ${perJob}: cc -O2 -c src/module.c -o build/module.o"; i=$((i+1)); sleep 0.1; done`
const workflow = join(dir, 'memory.yml')
writeFileSync(
  workflow,
  `name: memory bench\non: push\njobs:\n  live:\n    runs-on: bench\n    container: lab/busybox:1\n    strategy:\n      matrix:\n        n: [${Array.from({ length: jobs }, (_, i) => i + 1).join(', ')}]\n    steps:\n      - run: ${JSON.stringify(printer)}\n        env:\n          N: \${{ matrix.n }}\n`,
)

const consoleDir = join(dir, 'console')
const served = await startConsole(consoleDir, farmFile)

const rssMb = () => (Number(readFileSync(`/proc/${served.pid}/statm`, 'utf8').split(' ')[1]) * 4096) / 2 ** 20
const round1 = (x) => Math.round(x * 10) / 10
let result
try {
  await new Promise((r) => setTimeout(r, 2000))
  const idleMb = rssMb()
  const db = new Database(join(consoleDir, 'yardmaster.db'), { readonly: true, fileMustExist: true })
  const running = db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE state = 'running'")
  const samples = []
  const t0 = performance.now()
  const finished = submitRun(workflow, consoleDir)
  const timer = setInterval(() => {
    try {
      samples.push({ at: performance.now() - t0, rss: rssMb(), running: running.get().n })
    } catch {
      // The history is busy: the next sample.
    }
  }, 250)
  await finished.finally(() => clearInterval(timer))
  const runId = db.prepare('SELECT MAX(id) AS id FROM runs').get().id
  const counts = db
    .prepare(
      "SELECT job_id, COUNT(*) AS n, COUNT(DISTINCT text) AS d FROM log_lines WHERE run_id = ? AND stream = 'stdout' GROUP BY job_id",
    )
    .all(runId)
  db.close()
  const liveJobs = Math.max(...samples.map((s) => s.running))
  const live = samples.filter((s) => s.running >= 0.9 * jobs)
  result = {
    bench: 'memory',
    jobs,
    linesPerJob: perJob,
    idleMb: round1(idleMb),
    liveJobs,
    liveSamples: live.length,
    liveMaxMb: live.length ? round1(Math.max(...live.map((s) => s.rss))) : null,
    maxMb: round1(Math.max(...samples.map((s) => s.rss))),
    complete: counts.length === jobs && counts.every((c) => c.n === perJob && c.d === perJob),
    seconds: round1((performance.now() - t0) / 1000),
  }
} finally {
  served.kill('SIGTERM')
  spawnSync('rm', ['-rf', dir])
}
console.log(JSON.stringify(result))
