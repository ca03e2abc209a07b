// Benchmark: log ingestion. One job on a lab host prints BENCH_LOG_MB (default 200) MB of numbered
// lines of 100 bytes; a console (`yardmaster serve`) runs it, so the console is the
// orchestrator measured:
//   rate:     MB of output per second from the job's first line to its last line stored
//   memory:   the console's resident set, sampled every 250 ms while the job prints (start,
//             quarters, max): flat means it does not grow with the output
//   cpu:      the console's CPU seconds for the job (user + system, from /proc)
//   complete: every numbered line is in the history once, in order
//   baseline: `docker -H ssh://<same host> run` of the same command, output read and dropped:
//             how fast the bytes come off the node at all, in the same run
//   ingest:   the orchestrator's part alone (LogSink into a history), in this process: on the lab
//             the wire (docker's stream through sshd) is slower than ingestion
// Prints one JSON line. Target (issue 11): at least 50 MB/s, memory flat.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { Buffer } from 'node:buffer'
import { clearInterval, setImmediate, setInterval } from 'node:timers'
import { startConsole, submitRun } from './lib/console.mjs'

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3')
const kit = require('../out/main/bench-kit.js')

const mb = Number(process.env.BENCH_LOG_MB ?? 200)
const lab = JSON.parse(
  readFileSync(join(process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab', 'lab.json'), 'utf8'),
)
const host = lab.hosts.find((h) => h.name === 'n1')
const image = process.env.BENCH_IMAGE ?? 'lab/busybox:1'
// 100 bytes a line with its newline: a number, then text like a compiler's. busybox awk prints
// only about 6 MB/s, slower than what is measured, so it writes one MiB block once and the step
// prints that block `mb` times: line i of the output is line (i mod perBlock) + 1 of the block.
const perBlock = Math.round((1024 * 1024) / 100)
const lines = perBlock * mb
const printer = `awk 'BEGIN { for (i = 1; i <= ${perBlock}; i++) printf "%010d cc -O2 -c src/module.c -o build/module.o -Wall -Wextra -Werror=implicit lorem ipsum\\n", i }' > /tmp/block; n=0; while [ $n -lt ${mb} ]; do cat /tmp/block; n=$((n+1)); done`
const dir = mkdtempSync(join(tmpdir(), 'ym-bench-logs-'))
const workflow = join(dir, 'logs.yml')
writeFileSync(
  workflow,
  `name: logs bench\non: push\njobs:\n  loud:\n    runs-on: general\n    container: ${image}\n    steps:\n      - run: ${JSON.stringify(printer)}\n`,
)

const consoleDir = join(dir, 'console')
const served = await startConsole(consoleDir, lab.farmFile)

const pageSize = 4096
const ticks = 100 // USER_HZ on Linux
function sample(pid) {
  const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    rssMb: (Number(statm[1]) * pageSize) / 2 ** 20,
    cpuS: (Number(fields[11]) + Number(fields[12])) / ticks,
  }
}

const db = () => new Database(join(consoleDir, 'yardmaster.db'), { readonly: true, fileMustExist: true })
const round1 = (x) => Math.round(x * 10) / 10

async function viaConsole() {
  const before = sample(served.pid)
  const samples = []
  const t0 = performance.now()
  const finished = submitRun(workflow, consoleDir)
  const timer = setInterval(() => samples.push({ at: performance.now() - t0, ...sample(served.pid) }), 250)
  await finished.finally(() => clearInterval(timer))
  const after = sample(served.pid)
  // From the job's first stored line to its last: the ingestion, not the container's start.
  const d = db()
  const runId = d.prepare('SELECT MAX(id) AS id FROM runs').get().id
  const span = d
    .prepare(
      "SELECT MIN(at) AS first, MAX(at) AS last, COUNT(*) AS n FROM log_lines WHERE run_id = ? AND stream = 'stdout'",
    )
    .get(runId)
  // Every line once and in order: block after block, each numbered 1..perBlock.
  let seen = 0
  let complete = true
  for (const row of d
    .prepare("SELECT text FROM log_lines WHERE run_id = ? AND stream = 'stdout' ORDER BY seq")
    .iterate(runId)) {
    if (Number(row.text.slice(0, 10)) !== (seen++ % perBlock) + 1) {
      complete = false
      break
    }
  }
  d.close()
  complete &&= seen === lines
  const seconds = Math.max(0.001, (span.last - span.first) / 1000)
  const during = samples.filter((s) => s.at >= 0)
  const quarter = (q) =>
    round1(during[Math.min(during.length - 1, Math.floor((during.length - 1) * q))].rssMb)
  return {
    mbPerS: round1(mb / seconds),
    seconds: round1(seconds),
    lines: span.n,
    complete,
    rssMb: {
      before: round1(before.rssMb),
      q1: quarter(0.25),
      q2: quarter(0.5),
      q3: quarter(0.75),
      end: quarter(1),
      max: round1(Math.max(...during.map((s) => s.rssMb))),
    },
    cpuS: round1(after.cpuS - before.cpuS),
  }
}

function dockerCli() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let first = null
    let bytes = 0
    const child = spawn(
      'docker',
      ['-H', `ssh://${lab.user}@${host.address}:${host.port}`, 'run', '--rm', image, 'sh', '-c', printer],
      {
        env: { ...process.env, PATH: `${lab.sshWrapperDir}:${process.env.PATH}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    child.stdout.on('data', (d) => {
      first ??= performance.now()
      bytes += d.length
    })
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`docker run exited ${code}`))
      const seconds = (performance.now() - (first ?? t0)) / 1000
      resolve({ mbPerS: round1(bytes / 2 ** 20 / seconds), seconds: round1(seconds), bytes })
    })
  })
}

/**
 * The orchestrator's part alone, in this process: the same output, in the 32 KiB chunks a stream
 * delivers, through the console's LogSink (lines, workflow commands, masks with a secret set)
 * into a fresh history. What the lab's wire cannot show: how fast ingestion itself goes.
 */
async function ingestOnly() {
  const dataDir = join(dir, 'ingest')
  const db = kit.openDatabase(dataDir)
  const store = new kit.RunStore(db)
  const created = store.createRun({
    workflowName: 'ingest',
    workflowFile: '/ingest.yml',
    farmFile: null,
    jobs: [{ key: 'loud', name: 'loud', needs: [], runsOn: ['x'], steps: ['print'] }],
  })
  const jobId = created.jobIds.get('loud')
  const sink = new kit.LogSink(store, () => {}, { secrets: ['not-in-the-output-0123'] })
  sink.setFilter(jobId, new kit.WorkflowCommands(['not-in-the-output-0123']))
  const target = { runId: created.runId, jobId, jobKey: 'loud', stepIndex: 0, attempt: 1 }
  let block = ''
  for (let i = 1; i <= perBlock; i++)
    block += `${String(i).padStart(10, '0')} cc -O2 -c src/module.c -o build/module.o -Wall -Wextra -Werror=implicit lorem ipsum\n`
  const bytes = Buffer.from(block)
  const rss = []
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let n = 0; n < mb; n++) {
    for (let at = 0; at < bytes.length; at += 32 * 1024) {
      sink.write(target, 'stdout', bytes.subarray(at, at + 32 * 1024))
      // Each chunk its own turn of the event loop, as stream data is: the flush timer runs between.
      await new Promise((r) => setImmediate(r))
    }
    if (n % 10 === 0) rss.push(process.memoryUsage.rss() / 2 ** 20)
  }
  sink.endStep(target)
  sink.flush()
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const stored = db.prepare('SELECT COUNT(*) AS n FROM log_lines').get().n
  db.close()
  return {
    mbPerS: round1(mb / seconds),
    seconds: round1(seconds),
    complete: stored === lines,
    cpuS: round1((cpu.user + cpu.system) / 1e6),
    rssMb: { first: round1(rss[0]), max: round1(Math.max(...rss)), last: round1(rss.at(-1)) },
  }
}

let result
try {
  const ingest = await ingestOnly()
  const baseline = await dockerCli()
  const yardmaster = await viaConsole()
  result = {
    bench: 'logs',
    host: `${host.name} (${host.address}:${host.port})`,
    mb,
    lineBytes: 100,
    ingest,
    yardmaster,
    dockerCli: baseline,
    ratio: Math.round((yardmaster.mbPerS / baseline.mbPerS) * 100) / 100,
    memoryGrowthMb: round1(yardmaster.rssMb.max - yardmaster.rssMb.q1),
  }
} finally {
  served.kill('SIGTERM')
  spawnSync('rm', ['-rf', dir])
}
console.log(JSON.stringify(result))
