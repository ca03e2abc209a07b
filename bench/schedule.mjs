// Benchmark: the scheduler (core/scheduler/schedule.ts) over a simulated farm: no SSH, no lab.
//   passMs:   one full scheduling pass, at several farm sizes (jobs queued × nodes), 500 pipelines
//             at the largest; beside it, plain first-in first-out first-fit on the same input.
//             Targets (issue 10): 1,000 jobs × 100 nodes ≤ 10 ms, 10,000 × 1,000 ≤ 100 ms.
//   api:      1,000 simulated jobs at once through the real orchestrator and store; runs.list and
//             queue.list p99 meanwhile (target under 50 ms).
//   forecast: the mean absolute percentage error of duration forecasts on a simulated history
//             (target ≤ 15% for jobs with at least 5 past runs).
//   day:      a synthetic day of mixed pipelines (DAGs: build → tests matrix → GPU tests → packages)
//             on a heterogeneous farm, replayed event by event with our scheduler and with
//             FIFO first-fit: makespan (target ≥ 20% shorter) and hotfix waits (target ≤ one
//             job's duration).
// Medians of several rounds after a warm-up; one JSON line.
import { Buffer } from 'node:buffer'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { clearTimeout, setTimeout } from 'node:timers'

const require = createRequire(import.meta.url)
const kit = require('../out/main/bench-kit.js')
const rounds = Number(process.env.BENCH_ROUNDS ?? 9)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6
const r1 = (x) => Math.round(x * 10) / 10

/** A small deterministic PRNG (mulberry32), so both policies see the same day. */
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const farmNode = (name, labels, slots, cpus = 8) => ({
  name,
  host: '127.0.0.1',
  port: 22,
  user: 'ci',
  identityFile: null,
  executor: 'docker',
  labels: ['self-hosted', 'linux', ...labels],
  slots,
  defaultImage: null,
  cpus,
  memoryBytes: 32 * 1024 ** 3,
  source: null,
})
const sched = (node, extra = {}) => ({ node, refuses: null, slots: node.slots, loadPerCore: 0, ...extra })
const req = (labels) => kit.requirementsOf(['linux', ...labels], {})

// ---------------------------------------------------------------------------------------------
// Pass cost at several sizes.

function farmOf(n, random) {
  const nodes = []
  for (let i = 0; i < n; i++) {
    const roll = random()
    const labels =
      roll < 0.05 ? ['x64', 'gpu'] : roll < 0.25 ? ['arm64'] : roll < 0.35 ? ['x64', 'big'] : ['x64']
    nodes.push(sched(farmNode(`n${i}`, labels, 2 + Math.floor(random() * 7)), { loadPerCore: random() }))
  }
  return nodes
}

function queueOf(jobs, pipelines, random) {
  const kinds = [
    req(['x64']),
    req(['x64']),
    req(['x64']),
    req(['arm64']),
    req(['gpu']),
    req(['big']),
    req([]),
  ]
  const prios = ['hotfix', 'high', 'normal', 'normal', 'normal', 'low']
  const out = []
  for (let i = 0; i < jobs; i++)
    out.push({
      id: `j${i}`,
      pipeline: `p${i % pipelines}`,
      priority: prios[Math.floor(random() * prios.length)],
      readyAt: Math.floor(random() * 3_600_000),
      requirements: kinds[Math.floor(random() * kinds.length)],
      parallelGroup: i % 7 === 0 ? `p${i % pipelines}/matrix` : null,
      maxParallel: i % 7 === 0 ? 4 : null,
      lastNode: random() < 0.3 ? `n${Math.floor(random() * 10)}` : null,
      pathMs: Math.floor(random() * 3_600_000),
    })
  return out
}

/** Half the slots busy, so passes see a realistic mix of free and full nodes. */
function runningOf(nodes, random) {
  const out = []
  for (const s of nodes)
    for (let k = 0; k < Math.floor(s.slots / 2); k++)
      out.push({
        id: `r-${s.node.name}-${k}`,
        node: s.node.name,
        pipeline: `p${Math.floor(random() * 500)}`,
        priority: 'normal',
        startedAt: 0,
        expectedMs: 60_000 + Math.floor(random() * 600_000),
      })
  return out
}

/** The baseline: first in first out, first node in farm order with a free slot that fits. */
function fifoFirstFit({ queue, nodes, running }) {
  const used = new Map()
  for (const r of running) used.set(r.node, (used.get(r.node) ?? 0) + 1)
  const assignments = []
  for (const job of [...queue].sort((a, b) => a.readyAt - b.readyAt)) {
    const labels = job.requirements.labels
    const n = nodes.find(
      (s) =>
        (used.get(s.node.name) ?? 0) < s.slots &&
        labels.every((l) => s.node.labels.includes(l)) &&
        (!job.only || job.only.has(s.node.name)),
    )
    if (!n) continue
    used.set(n.node.name, (used.get(n.node.name) ?? 0) + 1)
    assignments.push({ job: job.id, node: n.node.name })
  }
  return { assignments, preemptions: [], pending: [] }
}

function passCost(jobs, nodeCount, pipelines) {
  const random = rng(jobs * 31 + nodeCount)
  const nodes = farmOf(nodeCount, random)
  const input = {
    now: 3_600_000,
    queue: queueOf(jobs, pipelines, random),
    nodes,
    running: runningOf(nodes, random),
  }
  kit.schedule(input)
  fifoFirstFit(input)
  const ours = []
  const base = []
  let assigned = 0
  for (let i = 0; i < rounds; i++) {
    let t0 = process.hrtime.bigint()
    assigned = kit.schedule(input).assignments.length
    ours.push(ms(t0))
    t0 = process.hrtime.bigint()
    fifoFirstFit(input)
    base.push(ms(t0))
  }
  return { jobs, nodes: nodeCount, ms: r1(median(ours)), fifoMs: r1(median(base)), assigned }
}

// ---------------------------------------------------------------------------------------------
// A synthetic day.

const MIN = 60_000
const GAP_MIN = Number(process.env.BENCH_DAY_GAP_MIN ?? 4)

/** A heterogeneous farm: generic x64 hosts, two ARM boxes, one GPU box, one big box. */
function dayFarm() {
  return [
    farmNode('x1', ['x64'], 4),
    farmNode('x2', ['x64'], 4),
    farmNode('gpu', ['x64', 'gpu'], 2),
    farmNode('x3', ['x64'], 4),
    farmNode('arm1', ['arm64'], 2),
    farmNode('big', ['x64', 'big'], 6),
    farmNode('arm2', ['arm64'], 2),
  ].map((n) => sched(n))
}

/** Pipelines over eight hours: build → tests (a matrix), GPU tests, a link on the big box → packages. */
function dayWork(seed) {
  const random = rng(seed)
  const jobs = []
  let t = 0
  for (let p = 0; t < 8 * 60 * MIN; p++) {
    t += Math.floor(random() * GAP_MIN * MIN)
    const roll = random()
    const priority = roll < 0.06 ? 'hotfix' : roll < 0.2 ? 'high' : roll < 0.8 ? 'normal' : 'low'
    const pipeline = `pipe${p % 40}`
    const id = (k) => `r${p}.${k}`
    const d = (lo, hi) => Math.floor((lo + random() * (hi - lo)) * MIN)
    const add = (k, labels, dur, needs) =>
      jobs.push({ id: id(k), pipeline, priority, arrive: t, labels, dur, needs: needs.map(id) })
    if (priority === 'hotfix') {
      add('fix', ['x64'], d(3, 6), [])
      continue
    }
    add('build', ['x64'], d(4, 10), [])
    const width = 2 + Math.floor(random() * 8)
    for (let m = 0; m < width; m++) add(`test${m}`, ['x64'], d(3, 12), ['build'])
    // Packages wait for every test, the GPU tests and the big link included.
    const gate = Array.from({ length: width }, (_, m) => `test${m}`)
    if (random() < 0.5) {
      add('gpu', ['gpu'], d(10, 25), ['build'])
      gate.push('gpu')
    }
    if (random() < 0.4) {
      add('link', ['big'], d(8, 20), ['build'])
      gate.push('link')
    }
    add('pkg-arm', ['arm64'], d(5, 12), gate)
    add('pkg-x64', ['x64'], d(3, 8), gate)
  }
  return jobs
}

/** The longest path from each job to the end of its pipeline run, by expected durations. */
function paths(jobs) {
  const byId = new Map(jobs.map((j) => [j.id, j]))
  const children = new Map()
  for (const j of jobs) for (const n of j.needs) (children.get(n) ?? children.set(n, []).get(n)).push(j.id)
  const memo = new Map()
  const path = (id) => {
    if (memo.has(id)) return memo.get(id)
    const v = byId.get(id).dur + Math.max(0, ...(children.get(id) ?? []).map(path))
    memo.set(id, v)
    return v
  }
  return new Map(jobs.map((j) => [j.id, path(j.id)]))
}

/** Replays the day event by event with a policy; returns makespan and hotfix waits. */
function replay(work, policy) {
  const nodes = dayFarm()
  const byId = new Map(work.map((j) => [j.id, j]))
  const pathMs = paths(work)
  const done = new Set()
  const started = new Map()
  const running = new Map()
  const readyAt = new Map()
  const events = [...new Set(work.map((j) => j.arrive))].sort((a, b) => a - b)
  let now = 0
  let passes = 0
  const waits = []
  for (;;) {
    // Finish what ends now.
    for (const [id, r] of running)
      if (r.end <= now) {
        running.delete(id)
        done.add(id)
      }
    const queue = []
    for (const j of work) {
      if (j.arrive > now || started.has(j.id) || !j.needs.every((n) => done.has(n))) continue
      if (!readyAt.has(j.id))
        readyAt.set(
          j.id,
          Math.max(j.arrive, ...j.needs.map((n) => running.get(n)?.end ?? started.get(n)?.end ?? 0)),
        )
      queue.push({
        id: j.id,
        pipeline: j.pipeline,
        priority: j.priority,
        readyAt: readyAt.get(j.id),
        requirements: req(j.labels),
        pathMs: pathMs.get(j.id),
      })
    }
    const runningJobs = [...running.values()].map((r) => ({
      id: r.id,
      node: r.node,
      pipeline: byId.get(r.id).pipeline,
      priority: byId.get(r.id).priority,
      startedAt: r.start,
      expectedMs: byId.get(r.id).dur,
    }))
    if (queue.length) {
      passes++
      const d = policy({ now, queue, nodes, running: runningJobs })
      for (const a of d.assignments) {
        const j = byId.get(a.job)
        const r = { id: j.id, node: a.node, start: now, end: now + j.dur }
        running.set(j.id, r)
        started.set(j.id, r)
        if (j.priority === 'hotfix') waits.push(now - j.arrive)
      }
    }
    if (done.size + running.size === work.length && !running.size) break
    const nextEnd = Math.min(...[...running.values()].map((r) => r.end))
    const nextArrival = events.find((t) => t > now) ?? Infinity
    const next = Math.min(nextEnd, nextArrival)
    if (!Number.isFinite(next)) throw new Error(`stuck at ${now} with ${work.length - done.size} jobs left`)
    now = next
  }
  const jobs = [...started.values()].filter((r) => byId.get(r.id).priority !== 'hotfix')
  const meanFlow = jobs.reduce((s, r) => s + (r.end - byId.get(r.id).arrive), 0) / jobs.length
  return { makespan: now, maxHotfixWait: Math.max(0, ...waits), meanFlow, passes }
}

/**
 * No policy finishes the day sooner than this: each kind of work over the slots that can take
 * it, and the last arrival's own critical path.
 */
function lowerBound(work) {
  const farm = dayFarm()
  const slotsFor = (labels) =>
    farm.filter((s) => labels.every((l) => s.node.labels.includes(l))).reduce((n, s) => n + s.slots, 0)
  const kinds = new Map()
  for (const j of work) {
    const k = j.labels.join(',')
    kinds.set(k, (kinds.get(k) ?? 0) + j.dur)
  }
  // x64 work competes with GPU and big work for the x64 nodes.
  const x64 = (kinds.get('x64') ?? 0) + (kinds.get('gpu') ?? 0) + (kinds.get('big') ?? 0)
  const pathMs = paths(work)
  const tail = Math.max(...work.filter((j) => !j.needs.length).map((j) => j.arrive + pathMs.get(j.id)))
  return Math.max(tail, x64 / slotsFor(['x64']), ...[...kinds].map(([k, w]) => w / slotsFor(k.split(','))))
}

/**
 * Forecast error on a simulated history: 40 jobs on 6 nodes, each (job, node) with its own
 * typical duration; every run varies (log-normal, σ 0.15) and one in 30 is an outlier (a hung
 * test, a cold cache: ×4). Each run is forecast from the runs before it, once its job has 5.
 */
function forecastError(seed) {
  const random = rng(seed)
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const base = new Map()
  const history = new Map()
  const pairs = []
  for (let i = 0; i < 4000; i++) {
    const job = `job${Math.floor(random() * 40)}`
    const node = `n${Math.floor(random() * 6)}`
    const key = `${job}@${node}`
    if (!base.has(job)) base.set(job, (1 + random() * 20) * MIN)
    if (!base.has(key)) base.set(key, base.get(job) * (0.7 + random() * 0.6))
    const outlier = random() < 1 / 30 ? 4 : 1
    const actual = base.get(key) * Math.exp(0.15 * gauss()) * outlier
    const past = history.get(job) ?? []
    if (past.length >= 5) pairs.push([kit.forecastDuration(past, node), actual])
    past.unshift({ node, durationMs: actual })
    history.set(job, past)
  }
  return { mape: kit.meanAbsolutePercentageError(pairs), forecasts: pairs.length }
}

/**
 * 1,000 jobs at once through the real orchestrator and store (a SQLite file), on a simulated
 * backend: 100 nodes of 10 slots whose "containers" wait a job's duration, no SSH. Meanwhile the
 * API's runs.list and queue.list are called every 10 ms; a call's latency counts from when it
 * was due, so time the event loop spent on the orchestrator counts against it.
 */
async function apiUnderLoad() {
  const dir = mkdtempSync(join(tmpdir(), 'ym-bench-load-'))
  const db = kit.openDatabase(dir)
  const nodes = Array.from({ length: 100 }, (_, i) => ({
    ...farmNode(`n${i}`, ['x64'], 10),
    executor: 'shell',
  }))
  const farm = { file: null, knownHosts: '/nowhere', nodes, platforms: {} }
  const env = {
    description: 'simulated',
    workspace: '/ws',
    temp: '/tmp/sim',
    runStep: (_cmd, onOutput, signal) =>
      new Promise((resolve) => {
        const t = setTimeout(
          () => {
            onOutput('stdout', Buffer.from('simulated step\n'))
            resolve(0)
          },
          3_000 + Math.random() * 2_000,
        )
        signal.addEventListener('abort', () => (clearTimeout(t), resolve(null)), { once: true })
      }),
    dispose: () => Promise.resolve(),
  }
  const executor = { prepare: () => Promise.resolve(env) }
  const sessions = { open: (node) => Promise.resolve({ node, executor, close: () => {} }) }
  const o = new kit.Orchestrator({ db, farm: () => farm, sessions: () => sessions, pollMs: 200 }).start()
  const runs = kit.runHandlers({ store: o.runs })
  const queue = kit.queueHandlers({ orchestrator: o })
  // 15 runs of a 100-way matrix: 1,000 jobs on the farm's 1,000 slots, 500 waiting.
  const wf = join(dir, 'wide.yml')
  writeFileSync(
    wf,
    'on: push\njobs:\n  t:\n    strategy: { matrix: { a: [0,1,2,3,4,5,6,7,8,9], b: [0,1,2,3,4,5,6,7,8,9] } }\n    runs-on: [self-hosted, linux, x64]\n    steps:\n      - run: echo hi\n',
  )
  for (let i = 0; i < 15; i++) await o.trigger({ workflowFile: wf })
  const lat = { list: [], queue: [] }
  let most = 0
  let mostWaiting = 0
  const t0 = performance.now()
  while (performance.now() - t0 < 8_000) {
    const due = performance.now() + 10
    await new Promise((r) => setTimeout(r, 10))
    runs['runs.list']({ limit: 50 })
    lat.list.push(performance.now() - due)
    const due2 = performance.now() + 10
    await new Promise((r) => setTimeout(r, 10))
    const waiting = queue['queue.list']().jobs.length
    lat.queue.push(performance.now() - due2)
    mostWaiting = Math.max(mostWaiting, waiting)
    const running = db.prepare("SELECT count(*) AS n FROM jobs WHERE state = 'running'").get().n
    most = Math.max(most, running)
  }
  await o.stop()
  db.close()
  rmSync(dir, { recursive: true, force: true })
  const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]
  return {
    runsListP99Ms: r1(p99(lat.list)),
    queueListP99Ms: r1(p99(lat.queue)),
    calls: lat.list.length,
    mostRunning: most,
    mostWaiting,
  }
}

// ---------------------------------------------------------------------------------------------

const sizes = [
  [100, 10, 50],
  [1000, 100, 100],
  [3000, 300, 250],
  [10000, 1000, 500],
].map(([j, n, p]) => passCost(j, n, p))
const work = dayWork(42)
const ours = replay(work, kit.schedule)
const fifo = replay(work, fifoFirstFit)
const durations = work.map((j) => j.dur).sort((a, b) => a - b)
const forecast = forecastError(7)
const load = await apiUnderLoad()
const minutes = (x) => r1(x / MIN)
console.log(
  JSON.stringify({
    bench: 'schedule',
    rounds,
    statistic: 'median',
    passMs: sizes,
    pass1000x100Ms: sizes[1].ms,
    pass1000x100TargetMs: 10,
    pass10000x1000Ms: sizes[3].ms,
    pass10000x1000TargetMs: 100,
    dayJobs: work.length,
    dayMakespanMin: minutes(ours.makespan),
    dayFifoMakespanMin: minutes(fifo.makespan),
    dayMakespanGain: Math.round((1 - ours.makespan / fifo.makespan) * 1000) / 1000,
    dayMakespanGainTarget: 0.2,
    dayLowerBoundMin: minutes(lowerBound(work)),
    dayMeanFlowMin: minutes(ours.meanFlow),
    dayFifoMeanFlowMin: minutes(fifo.meanFlow),
    hotfixMaxWaitMin: minutes(ours.maxHotfixWait),
    fifoHotfixMaxWaitMin: minutes(fifo.maxHotfixWait),
    medianJobMin: minutes(durations[Math.floor(durations.length / 2)]),
    apiUnderLoad: load,
    apiP99TargetMs: 50,
    forecastMape: Math.round(forecast.mape * 1000) / 1000,
    forecastMapeTarget: 0.15,
    forecasts: forecast.forecasts,
  }),
)
