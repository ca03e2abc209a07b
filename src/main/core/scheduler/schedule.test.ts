import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { farmNode } from '../../../../test/support/farm-node'
import { requirementsOf, whyNot } from './capability-match'
import { PRIORITIES } from './priority'
import { schedule, type QueuedJob, type RunningJob, type SchedNode, type ScheduleInput } from './schedule'

const MIN = 60_000

const sched = (name: string, labels: string[], slots = 1, extra: Partial<SchedNode> = {}): SchedNode => ({
  node: farmNode(name, { labels: ['self-hosted', 'linux', ...labels], slots }),
  refuses: null,
  slots,
  ...extra,
})

const job = (id: string, extra: Partial<QueuedJob> & { runsOn?: string[] } = {}): QueuedJob => {
  const { runsOn = ['linux'], ...rest } = extra
  return {
    id,
    pipeline: 'p',
    priority: 'normal',
    readyAt: 0,
    requirements: requirementsOf(runsOn, {}),
    ...rest,
  }
}

const run = (id: string, node: string, extra: Partial<RunningJob> = {}): RunningJob => ({
  id,
  node,
  pipeline: 'other',
  priority: 'normal',
  startedAt: 0,
  ...extra,
})

const pass = (input: Partial<ScheduleInput>) =>
  schedule({ now: 0, queue: [], nodes: [], running: [], ...input })

describe('schedule: examples', () => {
  it('serves classes in order, first in first out within one', () => {
    const d = pass({
      nodes: [sched('n1', [], 2)],
      queue: [
        job('low', { priority: 'low' }),
        job('n-late', { readyAt: 2 }),
        job('n-early', { readyAt: 1 }),
        job('high', { priority: 'high', readyAt: 3 }),
      ],
    })
    expect(d.assignments.map((a) => a.job)).toEqual(['high', 'n-early'])
    expect(d.pending.map((p) => p.job)).toEqual(['n-late', 'low'])
  })

  it('lifts a job that waited long one class up at a time, never to hotfix', () => {
    const d = pass({
      now: 25 * MIN,
      nodes: [sched('n1', [], 1)],
      policy: { agingMs: 10 * MIN },
      queue: [
        job('new-high', { priority: 'high', readyAt: 25 * MIN }),
        job('old-low', { priority: 'low', readyAt: 0 }),
      ],
    })
    // old-low is now `high` and older: it goes first.
    expect(d.assignments).toEqual([{ job: 'old-low', node: 'n1' }])
    const h = pass({
      now: 99 * MIN,
      nodes: [sched('n1', [], 1)],
      policy: { agingMs: 10 * MIN },
      queue: [
        job('old-low', { priority: 'low', readyAt: 0 }),
        job('fix', { priority: 'hotfix', readyAt: 98 * MIN }),
      ],
    })
    expect(h.assignments).toEqual([{ job: 'fix', node: 'n1' }])
  })

  it("gives one pipeline's single job a slot beside another's 200 matrix jobs", () => {
    const big = Array.from({ length: 200 }, (_, i) => job(`big-${i}`, { pipeline: 'big', readyAt: 0 }))
    const d = pass({
      nodes: [sched('n1', [], 4)],
      running: [run('r1', 'n1', { pipeline: 'big' })],
      queue: [...big, job('small', { pipeline: 'small', readyAt: 5 })],
    })
    expect(d.assignments.map((a) => a.job)).toContain('small')
    expect(d.assignments).toHaveLength(3)
  })

  it('leaves the only GPU node to GPU jobs while a generic node fits', () => {
    const nodes = [sched('gpu1', ['gpu'], 2), sched('n1', [], 1), sched('n2', [], 1)]
    const d = pass({
      nodes,
      queue: [job('a'), job('b'), job('c'), job('g', { runsOn: ['gpu'], readyAt: 1 })],
    })
    expect(d.assignments).toEqual([
      { job: 'a', node: 'n1' },
      { job: 'b', node: 'n2' },
      { job: 'c', node: 'gpu1' },
      { job: 'g', node: 'gpu1' },
    ])
  })

  it('prefers the node that last ran the job, then the one holding its image, among equals', () => {
    const nodes = [sched('n1', [], 1), sched('n2', [], 1, { images: new Set(['img']) }), sched('n3', [], 1)]
    const withImage = { ...requirementsOf(['linux'], {}), image: 'img', docker: true }
    nodes.forEach((n) => (n.node.executor = 'docker'))
    const d = pass({
      nodes,
      queue: [job('again', { lastNode: 'n3' }), job('img', { requirements: withImage, readyAt: 1 })],
    })
    expect(d.assignments).toEqual([
      { job: 'again', node: 'n3' },
      { job: 'img', node: 'n2' },
    ])
  })

  it('prefers the less loaded, then the healthier node', () => {
    const d = pass({
      nodes: [
        sched('n1', [], 1, { loadPerCore: 2 }),
        sched('n2', [], 1, { loadPerCore: 0.5, failureRate: 0.5 }),
        sched('n3', [], 1, { loadPerCore: 0.5 }),
      ],
      queue: [job('a'), job('b', { readyAt: 1 })],
    })
    expect(d.assignments.map((a) => a.node)).toEqual(['n3', 'n2'])
  })

  it('counts CPU and memory of what runs and of what it assigns', () => {
    const n = sched('n1', [], 4)
    n.node.cpus = 4
    n.node.memoryBytes = 8 * 1024 ** 3
    const big = {
      ...requirementsOf(['linux'], {}),
      resources: { cpus: 2, memoryBytes: 1024 ** 3, gpus: null },
    }
    const d = pass({
      nodes: [n],
      running: [run('r', 'n1', { cpus: 1 })],
      queue: [job('a', { requirements: big }), job('b', { requirements: big, readyAt: 1 })],
    })
    expect(d.assignments.map((a) => a.job)).toEqual(['a'])
    expect(d.pending[0]!.reason).toBe('1 node fits; none has 2 cpus and 1g memory free now')
  })

  it('holds a busy farm for a waiting hotfix: the next free slot is its own', () => {
    const nodes = [sched('n1', [], 1), sched('n2', [], 1)]
    const d = pass({
      nodes,
      running: [run('r1', 'n1', { expectedMs: 2 * MIN }), run('r2', 'n2', { expectedMs: 5 * MIN })],
      queue: [job('fix', { priority: 'hotfix' }), job('normal', { readyAt: 0 })],
    })
    expect(d.assignments).toEqual([])
    expect(d.pending.find((p) => p.job === 'fix')!.reason).toBe(
      '2 nodes fit; all 2 are busy; next expected free in about 2 min (n1)',
    )
    // n1 frees up: the hotfix takes it, although the normal job is as old.
    const next = pass({
      nodes,
      running: [run('r2', 'n2')],
      queue: [job('normal'), job('fix', { priority: 'hotfix', readyAt: 1 })],
    })
    expect(next.assignments).toEqual([{ job: 'fix', node: 'n1' }])
    // A hotfix that fits nowhere free holds what it fits: the normal job does not take n2's slot.
    const held = pass({
      nodes: [sched('n1', [], 1), sched('n2', [], 1)],
      running: [run('r1', 'n1')],
      queue: [job('fix', { priority: 'hotfix', only: new Set(['n1']) }), job('normal', { readyAt: 1 })],
    })
    expect(held.assignments).toEqual([{ job: 'normal', node: 'n2' }])
    const four = sched('n1', [], 2)
    four.node.cpus = 4
    const heldBoth = pass({
      nodes: [four],
      running: [run('r1', 'n1', { cpus: 2 })],
      queue: [
        job('fix', {
          priority: 'hotfix',
          requirements: {
            ...requirementsOf(['linux'], {}),
            resources: { cpus: 4, memoryBytes: null, gpus: null },
          },
        }),
        job('normal', { readyAt: 1 }),
      ],
    })
    // The hotfix cannot fit n1's free CPUs now; it holds n1's free slot all the same.
    expect(heldBoth.assignments).toEqual([])
    expect(heldBoth.pending.find((p) => p.job === 'normal')!.reason).toBe(
      'the free slot on n1 is held for hotfix job fix',
    )
  })

  it('with preemption on, a hotfix stops the youngest low job on a node it fits', () => {
    const nodes = [sched('n1', [], 1), sched('n2', [], 1), sched('gpu', ['gpu'], 1)]
    const running = [
      run('old-low', 'n1', { priority: 'low', startedAt: 0 }),
      run('young-low', 'n2', { priority: 'low', startedAt: 10 }),
      run('gpu-low', 'gpu', { priority: 'low', startedAt: 20 }),
    ]
    const queue = [job('fix', { priority: 'hotfix', runsOn: ['linux'] })]
    expect(pass({ nodes, running, queue }).preemptions).toEqual([])
    const d = pass({ nodes, running, queue, policy: { preemption: true } })
    // The hotfix fits every node: the youngest low job loses the least work.
    expect(d.preemptions).toEqual([{ job: 'gpu-low', node: 'gpu', for: 'fix' }])
    const normalOnly = pass({ nodes, running: [run('n', 'n1')], queue, policy: { preemption: true } })
    expect(normalOnly.preemptions).toEqual([])
  })

  it('honours max-parallel across what runs and what it assigns', () => {
    const d = pass({
      nodes: [sched('n1', [], 4)],
      running: [run('m0', 'n1', { parallelGroup: 'build' })],
      queue: ['m1', 'm2', 'm3'].map((id, i) =>
        job(id, { parallelGroup: 'build', maxParallel: 2, readyAt: i }),
      ),
    })
    expect(d.assignments.map((a) => a.job)).toEqual(['m1'])
    expect(d.pending[0]!.reason).toBe('max-parallel 2 reached: 2 of its matrix already run')
  })

  it('says why a job waits, in plain words, with counts per reason', () => {
    const cordoned = sched('n4', [], 1, { refuses: 'cordoned: disk swap' })
    const nodes = [sched('n1', [], 1), sched('n2', [], 1), cordoned]
    const gpu = pass({ nodes, queue: [job('g', { runsOn: ['gpu'] })] })
    expect(gpu.pending[0]).toEqual({
      job: 'g',
      reason: 'needs label `gpu`: no node has it',
      counts: { 'lacks label gpu': 3 },
    })
    const onlyCordoned = pass({ nodes: [cordoned], queue: [job('j')] })
    expect(onlyCordoned.pending[0]!.reason).toBe('n4 (cordoned: disk swap) fits but takes no work now')
    const busy = pass({ nodes, running: [run('r1', 'n1'), run('r2', 'n2')], queue: [job('j')] })
    expect(busy.pending[0]!.reason).toBe('2 nodes fit; all 2 are busy')
    expect(busy.pending[0]!.counts).toEqual({ 'refuses work': 1, busy: 2 })
    const shrunk = pass({
      nodes: [sched('n2', [], 0, { slotNote: 'n2: 0 of 4 slots while load is 7.9 on 4 cores' })],
      queue: [job('j')],
    })
    expect(shrunk.pending[0]!.reason).toBe(
      '1 node fits; it is busy (n2: 0 of 4 slots while load is 7.9 on 4 cores)',
    )
    const small = sched('n1', [], 1)
    small.node.cpus = 2
    const tooBig = pass({
      nodes: [small],
      queue: [
        job('j', {
          requirements: {
            ...requirementsOf(['linux'], {}),
            resources: { cpus: 8, memoryBytes: null, gpus: null },
          },
        }),
      ],
    })
    expect(tooBig.pending[0]!.reason).toBe('no node fits: 1 has 2 cpus, the job asks for 8')
    expect(pass({ queue: [job('j')] }).pending[0]!.reason).toBe('no node fits: the farm has no nodes')
  })
})

// ---------------------------------------------------------------------------------------------
// Properties

const LABELS = ['x64', 'arm64', 'gpu', 'big']

const nodeArb = fc.record({
  labels: fc.subarray(LABELS),
  slots: fc.integer({ min: 0, max: 3 }),
  cpus: fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
  refuses: fc.option(fc.constantFrom('cordoned: disk swap', 'draining'), { nil: null, freq: 4 }),
})

const jobArb = fc.record({
  labels: fc.subarray(LABELS, { maxLength: 2 }),
  pipeline: fc.constantFrom('a', 'b', 'c'),
  priority: fc.constantFrom(...PRIORITIES),
  readyAt: fc.integer({ min: 0, max: 100 }),
  cpus: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null, freq: 3 }),
})

const farmArb = fc
  .record({
    nodes: fc.array(nodeArb, { minLength: 1, maxLength: 6 }),
    jobs: fc.array(jobArb, { maxLength: 25 }),
    running: fc.array(
      fc.record({
        node: fc.nat(),
        pipeline: fc.constantFrom('a', 'b', 'c'),
        priority: fc.constantFrom(...PRIORITIES),
      }),
      { maxLength: 6 },
    ),
    preemption: fc.boolean(),
  })
  .map(({ nodes, jobs, running, preemption }) => {
    const scheds = nodes.map((n, i) => {
      const s = sched(`n${i}`, n.labels, n.slots, { refuses: n.refuses })
      s.node.cpus = n.cpus
      return s
    })
    const queue = jobs.map((j, i) =>
      job(`j${i}`, {
        pipeline: j.pipeline,
        priority: j.priority,
        readyAt: j.readyAt,
        requirements: {
          ...requirementsOf(['linux', ...j.labels], {}),
          resources: { cpus: j.cpus, memoryBytes: null, gpus: null },
        },
      }),
    )
    // What runs fits its node's slots (running jobs are placed, after all).
    const count = new Map<string, number>()
    const runs: RunningJob[] = []
    running.forEach((r, i) => {
      const s = scheds[r.node % scheds.length]!
      const n = count.get(s.node.name) ?? 0
      if (n >= s.slots) return
      count.set(s.node.name, n + 1)
      runs.push(run(`r${i}`, s.node.name, { pipeline: r.pipeline, priority: r.priority, startedAt: i }))
    })
    return { nodes: scheds, queue, running: runs, policy: { preemption, agingMs: 1e12 } }
  })

describe('schedule: properties', () => {
  it('never places a job where its labels, the node state, slots or CPUs forbid it', () => {
    fc.assert(
      fc.property(farmArb, (input) => {
        const d = schedule({ now: 0, ...input })
        const byName = new Map(input.nodes.map((n) => [n.node.name, n]))
        const jobs = new Map(input.queue.map((j) => [j.id, j]))
        const used = new Map<string, { n: number; cpus: number }>()
        for (const r of input.running) {
          const u = used.get(r.node) ?? { n: 0, cpus: 0 }
          u.n++
          used.set(r.node, u)
        }
        for (const a of d.assignments) {
          const n = byName.get(a.node)!
          const j = jobs.get(a.job)!
          expect(whyNot(j.requirements, n.node)).toEqual([])
          expect(n.refuses).toBeNull()
          const u = used.get(a.node) ?? { n: 0, cpus: 0 }
          u.n++
          u.cpus += j.requirements.resources.cpus ?? 0
          used.set(a.node, u)
        }
        for (const [name, u] of used) {
          const n = byName.get(name)!
          expect(u.n).toBeLessThanOrEqual(n.slots)
          if (n.node.cpus != null) expect(u.cpus).toBeLessThanOrEqual(n.node.cpus)
        }
        // Every job is either assigned or waiting with a reason, once.
        const seen = [...d.assignments.map((a) => a.job), ...d.pending.map((p) => p.job)]
        expect(seen.sort()).toEqual(input.queue.map((j) => j.id).sort())
        for (const p of d.pending) expect(p.reason).not.toBe('')
      }),
      { numRuns: 500 },
    )
  })

  it('within a class, a job never starts before an identical earlier one (and no class jumps a higher one)', () => {
    fc.assert(
      fc.property(farmArb, (input) => {
        const d = schedule({ now: 0, ...input, policy: { agingMs: 1e12 } })
        const assigned = new Set(d.assignments.map((a) => a.job))
        const same = (x: QueuedJob, y: QueuedJob) =>
          JSON.stringify(x.requirements) === JSON.stringify(y.requirements) && x.pipeline === y.pipeline
        for (const x of input.queue)
          for (const y of input.queue) {
            if (!same(x, y) || !assigned.has(y.id) || assigned.has(x.id)) continue
            // y ran and x did not: x must come later in class or (same class) in time.
            const rx = PRIORITIES.indexOf(x.priority)
            const ry = PRIORITIES.indexOf(y.priority)
            expect(rx > ry || (rx === ry && x.readyAt >= y.readyAt)).toBe(true)
          }
      }),
      { numRuns: 500 },
    )
  })

  it('shares slots fairly: pipelines with waiting identical jobs get within one of each other', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 2, maxLength: 5 }),
        (slots, sizes) => {
          const queue = sizes.flatMap((n, p) =>
            Array.from({ length: n }, (_, i) =>
              job(`p${p}-${i}`, { pipeline: `p${p}`, readyAt: p * 1000 + i }),
            ),
          )
          const d = pass({ nodes: [sched('n1', [], slots)], queue })
          const got = sizes.map((_, p) => d.assignments.filter((a) => a.job.startsWith(`p${p}-`)).length)
          const starved = sizes.map((n, p) => got[p]! < n)
          const shares = got.filter((_, p) => starved[p])
          // A pipeline that still waits got no fewer than any other's share minus one.
          for (const s of shares) expect(Math.max(...got) - s).toBeLessThanOrEqual(1)
          expect(got.reduce((a, b) => a + b, 0)).toBe(Math.min(slots, queue.length))
        },
      ),
    )
  })

  it('a generic job never takes a specialised node while a generic one has room', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gpu: fc.boolean(), slots: fc.integer({ min: 0, max: 2 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        (specs) => {
          const nodes = specs.map((s, i) => sched(`n${i}`, s.gpu ? ['gpu'] : [], s.slots))
          const d = pass({ nodes, queue: [job('generic')] })
          const genericFree = specs.some((s) => !s.gpu && s.slots > 0)
          const gpuShare = specs.filter((s) => s.gpu).length / specs.length
          if (genericFree && gpuShare < 1)
            expect(d.assignments[0]!.node).toSatisfy((n: string) => !specs[Number(n.slice(1))]!.gpu)
        },
      ),
    )
  })

  it('under continuous load no job waits forever: aging brings a low job to a slot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), (arrivals, slots) => {
        // Each tick (one minute) every running job ends and `arrivals` normal jobs arrive.
        const agingMs = 10 * MIN
        let queue: QueuedJob[] = [job('starving', { priority: 'low', readyAt: 0 })]
        let next = 0
        for (let tick = 0; tick < 40; tick++) {
          const now = tick * MIN
          for (let k = 0; k < arrivals; k++) queue.push(job(`n${next++}`, { readyAt: now }))
          const d = schedule({
            now,
            nodes: [sched('n1', [], slots)],
            running: [],
            queue,
            policy: { agingMs },
          })
          const started = new Set(d.assignments.map((a) => a.job))
          if (started.has('starving')) return tick <= 2 * (agingMs / MIN) + 1
          queue = queue.filter((j) => !started.has(j.id))
        }
        return false
      }),
    )
  })
})
