// Benchmark: dispatch latency of a one-step busybox job on a lab host.
//   yardmaster: `yardmaster run` start -> first log line of the step, and total time
//   viaConsole: the same `yardmaster run` while a console (`yardmaster serve`) runs on its data
//               dir: submitted to the console's orchestrator, followed from the history
//   baseline:   `docker -H ssh://<same host> run --rm <same image> <same command>`, same figures
// Alternating rounds in the same process, so machine noise hits both alike. Prints one JSON line.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startConsole } from './lib/console.mjs'

const rounds = Number(process.env.BENCH_ROUNDS ?? 7)
const lab = JSON.parse(
  readFileSync(join(process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab', 'lab.json'), 'utf8'),
)
const host = lab.hosts.find((h) => h.name === 'n1')
const image = 'lab/busybox:1'
const marker = 'dispatch-bench-hello'
const dir = mkdtempSync(join(tmpdir(), 'ym-bench-'))
const workflow = join(dir, 'dispatch.yml')
writeFileSync(
  workflow,
  `name: dispatch bench\non: push\njobs:\n  one:\n    runs-on: general\n    container: ${image}\n    steps:\n      - run: echo ${marker}\n`,
)

/** Spawns a command; resolves with ms to the first stdout line containing the marker, and ms to exit. */
function timeCommand(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let first = null
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
      if (first === null && out.includes(marker)) first = ms()
    })
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      const total = ms()
      if (code !== 0 || first === null)
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}\n${err}`))
      else resolve({ first, total })
    })
  })
}

const yardmaster = () =>
  timeCommand(process.execPath, [
    'bin/yardmaster.cjs',
    'run',
    workflow,
    '--farm',
    lab.farmFile,
    '--data-dir',
    join(dir, 'data'),
  ])
// A console on its own data dir; `yardmaster run` there submits to it.
const consoleDir = join(dir, 'console')
const served = await startConsole(consoleDir, lab.farmFile)
const viaConsole = () =>
  timeCommand(process.execPath, ['bin/yardmaster.cjs', 'run', workflow, '--data-dir', consoleDir])
const dockerCli = () =>
  timeCommand(
    'docker',
    ['-H', `ssh://${lab.user}@${host.address}:${host.port}`, 'run', '--rm', image, 'echo', marker],
    {
      PATH: `${lab.sshWrapperDir}:${process.env.PATH}`,
    },
  )

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const round1 = (x) => Math.round(x * 10) / 10
const ratio = (x, y) => Math.round((x / y) * 100) / 100

// One warm-up each (page cache, first SSH handshake of the sshd), not counted.
await yardmaster()
await viaConsole()
await dockerCli()
const ym = []
const vc = []
const dk = []
try {
  for (let i = 0; i < rounds; i++) {
    ym.push(await yardmaster())
    vc.push(await viaConsole())
    dk.push(await dockerCli())
  }
} finally {
  served.kill('SIGTERM')
}
const f = (rs) => ({
  firstLineMs: round1(median(rs.map((r) => r.first))),
  totalMs: round1(median(rs.map((r) => r.total))),
})
const a = f(ym)
const c = f(vc)
const b = f(dk)
console.log(
  JSON.stringify({
    bench: 'dispatch',
    host: `${host.name} (${host.address}:${host.port})`,
    image,
    rounds,
    statistic: 'median',
    yardmaster: a,
    viaConsole: c,
    dockerCli: b,
    ratio: { firstLine: ratio(a.firstLineMs, b.firstLineMs), total: ratio(a.totalMs, b.totalMs) },
    viaConsoleRatio: { firstLine: ratio(c.firstLineMs, b.firstLineMs), total: ratio(c.totalMs, b.totalMs) },
  }),
)
