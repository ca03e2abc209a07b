// Benchmark: planning speed.
//   workflow500: parse + validate + plan a generated 500-job workflow (GitHub's parser included).
//   graph5000:   cycle check, levels and critical path of a 5,000-job dependency graph.
// Targets (issue 4): under 100 ms and under 50 ms. Medians of several rounds after a warm-up.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const kit = require('../out/main/bench-kit.js')
const rounds = Number(process.env.BENCH_ROUNDS ?? 15)

// A realistic shape: jobs in 25 stages of 20, each needing up to 3 jobs of the stage before,
// with env, if and expressions in steps, a few matrices.
function workflow(n) {
  const lines = ['name: generated', 'on: push', 'env:', '  GLOBAL: "1"', 'jobs:']
  for (let i = 0; i < n; i++) {
    const stage = Math.floor(i / 20)
    lines.push(`  j${i}:`, `    runs-on: [linux, "\${{ matrix.os || 'x64' }}"]`)
    if (stage > 0) {
      const needs = [0, 7, 13].map((k) => `j${(stage - 1) * 20 + ((i + k) % 20)}`)
      lines.push(`    needs: [${[...new Set(needs)].join(', ')}]`)
    }
    if (i % 50 === 0)
      lines.push('    strategy:', '      matrix:', '        os: [x64, arm64]', '        n: [1, 2]')
    lines.push(
      '    env:',
      `      STAGE: "${stage}"`,
      '    steps:',
      `      - run: echo "\${{ github.sha }} $STAGE"`,
      "        if: github.event_name == 'push'",
      '      - run: make -j4',
    )
  }
  return lines.join('\n') + '\n'
}

function graph(n) {
  const jobs = []
  for (let i = 0; i < n; i++) {
    const needs = []
    for (const d of [1, 17, 101]) if (i - d >= 0 && (i * 7 + d) % 3 !== 0) needs.push(`j${i - d}`)
    jobs.push({ key: `j${i}`, needs })
  }
  return jobs
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

const text = workflow(500)
const nodes = [
  { name: 'n1', labels: ['self-hosted', 'linux', 'x64'], slots: 4 },
  { name: 'n2', labels: ['self-hosted', 'linux', 'arm64'], slots: 2 },
]
async function planOnce() {
  const t0 = process.hrtime.bigint()
  const wf = await kit.parseWorkflow('generated.yml', text)
  const plan = kit.planWorkflow(wf, nodes, {
    github: { sha: 'abc', event_name: 'push' },
    inputs: {},
    vars: {},
    needs: {},
    strategy: {},
    matrix: {},
  })
  const t = ms(t0)
  if (plan.jobs.length !== 500) throw new Error(`planned ${plan.jobs.length} jobs, expected 500`)
  return { t, levels: plan.levels.length }
}
const big = graph(5000)
function graphOnce() {
  const t0 = process.hrtime.bigint()
  if (kit.findCycle(big)) throw new Error('the generated graph has a cycle')
  const lv = kit.levels(big)
  const path = kit.criticalPath(big)
  return { t: ms(t0), levels: lv.length, path: path.length }
}

await planOnce()
graphOnce()
const w = []
const g = []
let info = {}
for (let i = 0; i < rounds; i++) {
  const a = await planOnce()
  const b = graphOnce()
  w.push(a.t)
  g.push(b.t)
  info = { workflowLevels: a.levels, graphLevels: b.levels, criticalPath: b.path }
}
const r1 = (x) => Math.round(x * 10) / 10
console.log(
  JSON.stringify({
    bench: 'plan',
    rounds,
    statistic: 'median',
    workflow500Ms: r1(median(w)),
    workflow500TargetMs: 100,
    graph5000Ms: r1(median(g)),
    graph5000TargetMs: 50,
    ...info,
  }),
)
