// Benchmark: what one pooled SSH connection buys, on one lab host, in one run.
//   pooled: `docker info`, and create + start + wait + remove of a `true` busybox container,
//           through dockerOverSsh on a single ssh2 connection (the built app's code, bench-kit.js)
//   cli:    the same through `docker -H ssh://…` (a new SSH connection per command: `info`, and
//           `run --rm`, which does create + start + wait + remove)
// Rounds alternate pooled and CLI so machine noise hits both alike. Prints one JSON line with
// medians, ratios (pooled / CLI) and whether they meet the targets (info <= 0.05, container <= 0.2).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
const { connectSsh, dockerOverSsh, KnownHosts, loadFarmFile } = require('../out/main/bench-kit.js')

const rounds = Number(process.env.BENCH_ROUNDS ?? 15)
const lab = JSON.parse(
  readFileSync(join(process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab', 'lab.json'), 'utf8'),
)
const host = lab.hosts.find((h) => h.name === (process.env.BENCH_HOST ?? 'n1'))
const image = 'lab/busybox:1'
const TARGETS = { info: 0.05, container: 0.2 }

const farm = loadFarmFile(lab.farmFile)
const node = farm.nodes.find((n) => n.name === host.name)
const ssh = await connectSsh(node, KnownHosts.load(farm.knownHosts))
const docker = dockerOverSsh(ssh)

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6
async function time(fn) {
  const t0 = process.hrtime.bigint()
  await fn()
  return ms(t0)
}

const pooledInfo = () => time(() => docker.info())
const pooledContainer = () =>
  time(async () => {
    // Labelled like a job's container, so `yardmaster node <n> prune` clears one a crash left.
    const c = await docker.createContainer({
      Image: image,
      Cmd: ['true'],
      Labels: { 'io.yardmaster.managed': 'true', 'io.yardmaster.bench': 'ssh' },
    })
    await c.start()
    const { StatusCode } = await c.wait()
    await c.remove()
    if (StatusCode !== 0) throw new Error(`true exited ${StatusCode}`)
  })

const cliEnv = { ...process.env, PATH: `${lab.sshWrapperDir}:${process.env.PATH}` }
const target = `ssh://${lab.user}@${host.address}:${host.port}`
const cli = (...args) =>
  time(
    () =>
      new Promise((resolve, reject) => {
        const child = spawn('docker', ['-H', target, ...args], {
          env: cliEnv,
          stdio: ['ignore', 'ignore', 'pipe'],
        })
        let err = ''
        child.stderr.on('data', (d) => (err += d))
        child.on('error', reject)
        child.on('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`docker ${args.join(' ')} exited ${code}: ${err}`)),
        )
      }),
  )
const cliInfo = () => cli('info')
const cliContainer = () => cli('run', '--rm', image, 'true')

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const round1 = (x) => Math.round(x * 10) / 10
const ratio = (x, y) => Math.round((x / y) * 1000) / 1000

try {
  // Warm-up, not counted: the first channel, page cache, sshd's first fork.
  await pooledInfo()
  await pooledContainer()
  await cliInfo()
  await cliContainer()
  const t = { pooledInfo: [], cliInfo: [], pooledContainer: [], cliContainer: [] }
  for (let i = 0; i < rounds; i++) {
    t.pooledInfo.push(await pooledInfo())
    t.cliInfo.push(await cliInfo())
    t.pooledContainer.push(await pooledContainer())
    t.cliContainer.push(await cliContainer())
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round1(median(v))]))
  const r = {
    info: ratio(m.pooledInfo, m.cliInfo),
    container: ratio(m.pooledContainer, m.cliContainer),
  }
  console.log(
    JSON.stringify({
      bench: 'ssh',
      host: `${host.name} (${host.address}:${host.port})`,
      image,
      rounds,
      statistic: 'median ms',
      pooled: { infoMs: m.pooledInfo, containerMs: m.pooledContainer },
      dockerCli: { infoMs: m.cliInfo, containerMs: m.cliContainer },
      ratio: r,
      targets: TARGETS,
      meetsTargets: r.info <= TARGETS.info && r.container <= TARGETS.container,
    }),
  )
} finally {
  ssh.end()
}
