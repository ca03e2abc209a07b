/**
 * One scheduling pass: the queue and the farm in, assignments (job × node), preemptions and a
 * reason for every job left waiting out. Pure, no I/O: the orchestrator applies the decisions
 * (claims the slot in SQLite, then starts the attempt through the executor).
 *
 * Order of service:
 *   1. class (hotfix, high, normal, low), after aging (priority.ts);
 *   2. fair share within a class: the pipeline with the fewest jobs running (and assigned in this
 *      pass) goes next, so 200 matrix jobs of one pipeline cannot lock out another's one job;
 *   3. within a pipeline, first in first out; jobs that became ready together start the longest
 *      remaining critical path first.
 * Fit: every required label, docker when the job needs containers, allowed host paths, CPU and
 *   memory within what is free, the node accepting work, a free (effective) slot, max-parallel.
 * Placement among the nodes that fit: the least specialised first (a generic job leaves the only
 *   GPU node alone while another fits), then locality (the node that last ran the job, the image
 *   already there), then lower load, better health, more free slots, farm order.
 * A hotfix that finds no free slot holds the nodes that fit it for the rest of the pass, so it
 *   takes the first slot that frees up; with preemption on, it stops the youngest `low` job on one
 *   of them instead (requeued by the orchestrator, recorded as preempted).
 */
import type { FarmNode } from '../farm/farm-model'
import { formatSize } from '../workflow/container-options'
import { whyNot, type Requirements } from './capability-match'
import { DEFAULT_AGING_MS, effectiveRank, type Priority } from './priority'

export interface SchedNode {
  node: FarmNode
  /** Why the node takes no new work now (unreachable, draining, cordoned, quarantined); null when it does. */
  refuses: string | null
  /** Slots now: the declared ones, or fewer while the node is under pressure (effective-slots.ts). */
  slots: number
  /** Why `slots` is below the declared count ("2 of 4 slots while load is 7.9 on 4 cores"). */
  slotNote?: string | null
  /** Load average per core, when measured. */
  loadPerCore?: number | null
  /** Share of recent jobs that failed for the node's sake, 0..1. */
  failureRate?: number
  /** Images the node's engine holds. */
  images?: ReadonlySet<string>
}

export interface RunningJob {
  id: string
  /** How reasons name it ("build (run 41)"); the id when absent. */
  name?: string
  node: string
  pipeline: string
  priority: Priority
  /** The job (a matrix's parent) whose `max-parallel` counts it. */
  parallelGroup?: string | null
  cpus?: number | null
  memoryBytes?: number | null
  startedAt: number
  /** Forecast duration; null when unknown. */
  expectedMs?: number | null
}

export interface QueuedJob {
  id: string
  /** How reasons name it ("build (run 41)"); the id when absent. */
  name?: string
  /** Workflow file and repository: the unit of fair share. */
  pipeline: string
  priority: Priority
  /** When it became ready to run. */
  readyAt: number
  requirements: Requirements
  /** Restricts placement to these nodes (the trigger's extra labels, nodes this process opened). */
  only?: ReadonlySet<string> | null
  parallelGroup?: string | null
  /** At most this many of `parallelGroup` run at once. */
  maxParallel?: number | null
  /** The node that last ran this job (locality). */
  lastNode?: string | null
  /** The longest expected path from this job to the end of its run, itself included (ms). */
  pathMs?: number | null
  /** Its forecast duration (ms); null when it never ran. */
  expectedMs?: number | null
}

export interface SchedulePolicy {
  /** @default DEFAULT_AGING_MS */
  agingMs?: number
  /** A hotfix may stop a running `low` job. @default false */
  preemption?: boolean
}

export interface ScheduleInput {
  now: number
  queue: readonly QueuedJob[]
  nodes: readonly SchedNode[]
  running: readonly RunningJob[]
  policy?: SchedulePolicy
}

export interface Assignment {
  job: string
  node: string
}

export interface Preemption {
  /** The running job to stop and requeue. */
  job: string
  node: string
  /** The hotfix it makes room for. */
  for: string
}

export interface Pending {
  job: string
  /** One line in plain words. */
  reason: string
  /** Nodes by why they did not take it (Nomad's "constraint filtered" counts). */
  counts: Record<string, number>
}

export interface ScheduleDecision {
  assignments: Assignment[]
  preemptions: Preemption[]
  /** Every job of the queue that was not assigned, in service order. */
  pending: Pending[]
}

/** What a node has left in this pass. */
interface Room {
  at: number
  sched: SchedNode
  free: number
  cpus: number | null
  memory: number | null
  /** Rarity-weighted count of the node's labels: 0 for the most generic node. */
  special: number
  /** A hotfix waits for this node's next free slot. */
  heldFor: QueuedJob | null
}

/** The nodes that fit one kind of job regardless of what runs, best first, and why the others do not. */
interface Fit {
  /** Indexes into rooms, by (specialisation, load, health, farm order). */
  order: number[]
  /** Nodes that fit but refuse work: "n4 (cordoned: disk swap)". */
  refusing: string[]
  /** reason -> nodes, for nodes that do not fit. */
  unfit: Map<string, number>
  /** The same indexes, for lookups. */
  members: Set<number>
  /** First index of `order` that may still have room (rooms only fill up during a pass). */
  cursor: number
  key: string
}

export function schedule(input: ScheduleInput): ScheduleDecision {
  const { now } = input
  const agingMs = input.policy?.agingMs ?? DEFAULT_AGING_MS
  const rooms = roomsOf(input)
  const byName = new Map(rooms.map((r, i) => [r.sched.node.name, i]))
  const running = new Map<string, number>()
  const inGroup = new Map<string, number>()
  for (const r of input.running) {
    running.set(r.pipeline, (running.get(r.pipeline) ?? 0) + 1)
    if (r.parallelGroup) inGroup.set(r.parallelGroup, (inGroup.get(r.parallelGroup) ?? 0) + 1)
  }
  const fits = new Map<string, Fit>()
  const fitOf = (req: Requirements): Fit => {
    const key = requirementKey(req)
    let fit = fits.get(key)
    if (!fit) fits.set(key, (fit = staticFit(req, rooms, key)))
    return fit
  }
  // Jobs of one kind wait for one reason: say it once per pass (a hotfix's own holds aside).
  const reasons = new Map<string, { reason: string; counts: Record<string, number> }>()
  const onlyKeys = new Map<ReadonlySet<string>, number>()
  const reasonOf = (job: QueuedJob, fit: Fit) => {
    const why = () => ({
      reason: whyWaiting(job, fit, rooms, input.running, now),
      counts: countsOf(job, fit, rooms),
    })
    if (job.priority === 'hotfix') return why()
    let only = 0
    if (job.only) {
      if (!onlyKeys.has(job.only)) onlyKeys.set(job.only, onlyKeys.size + 1)
      only = onlyKeys.get(job.only)!
    }
    const key = `${fit.key}#${only}`
    let said = reasons.get(key)
    if (said === undefined) reasons.set(key, (said = why()))
    return said
  }

  const assignments: Assignment[] = []
  const preemptions: Preemption[] = []
  const pending: Pending[] = []
  const preempted = new Set<string>()
  let freeSlots = rooms.reduce((n, r) => n + r.free, 0)

  for (const job of serviceOrder(input.queue, now, agingMs, running)) {
    const fit = fitOf(job.requirements)
    const wait = (reason: string, counts: Record<string, number> = reasonOf(job, fit).counts) =>
      pending.push({ job: job.id, reason, counts })
    if (
      job.parallelGroup &&
      job.maxParallel != null &&
      (inGroup.get(job.parallelGroup) ?? 0) >= job.maxParallel
    ) {
      wait(`max-parallel ${job.maxParallel} reached: ${job.maxParallel} of its matrix already run`)
      continue
    }
    const room = freeSlots > 0 ? place(job, fit, rooms, byName) : null
    if (room) {
      room.free--
      freeSlots--
      if (room.cpus !== null && job.requirements.resources.cpus !== null)
        room.cpus -= job.requirements.resources.cpus
      if (room.memory !== null && job.requirements.resources.memoryBytes !== null)
        room.memory -= job.requirements.resources.memoryBytes
      assignments.push({ job: job.id, node: room.sched.node.name })
      running.set(job.pipeline, (running.get(job.pipeline) ?? 0) + 1)
      if (job.parallelGroup) inGroup.set(job.parallelGroup, (inGroup.get(job.parallelGroup) ?? 0) + 1)
      continue
    }
    const hotfix = job.priority === 'hotfix'
    if (hotfix && input.policy?.preemption) {
      const victim = youngestLow(job, fit, rooms, input.running, preempted)
      if (victim) {
        preempted.add(victim.id)
        preemptions.push({ job: victim.id, node: victim.node, for: job.id })
        const r = rooms[byName.get(victim.node)!]!
        if (!r.heldFor) r.heldFor = job
        wait(`preempting low-priority job ${nameOf(victim)} on ${victim.node}`)
        continue
      }
    }
    const said = reasonOf(job, fit)
    wait(said.reason, said.counts)
    // Hold the fitting nodes' next free slot for it: nothing of lower class takes them meanwhile.
    if (hotfix)
      for (const i of fit.order) {
        const r = rooms[i]!
        if (!r.heldFor && r.sched.refuses === null && (!job.only || job.only.has(r.sched.node.name)))
          r.heldFor = job
      }
  }
  return { assignments, preemptions, pending }
}

function roomsOf(input: ScheduleInput): Room[] {
  const busy = new Map<string, { n: number; cpus: number; memory: number }>()
  for (const r of input.running) {
    const b = busy.get(r.node) ?? { n: 0, cpus: 0, memory: 0 }
    b.n++
    b.cpus += r.cpus ?? 0
    b.memory += r.memoryBytes ?? 0
    busy.set(r.node, b)
  }
  // A label few nodes carry makes a node special: weight each label by how rare it is.
  const carriers = new Map<string, number>()
  for (const s of input.nodes)
    for (const l of new Set(s.node.labels.map((x) => x.toLowerCase())))
      carriers.set(l, (carriers.get(l) ?? 0) + 1)
  const total = input.nodes.length
  return input.nodes.map((sched, at) => {
    const b = busy.get(sched.node.name) ?? { n: 0, cpus: 0, memory: 0 }
    let special = 0
    for (const l of new Set(sched.node.labels.map((x) => x.toLowerCase()))) {
      const share = carriers.get(l)! / total
      if (share < 1) special += 1 / share - 1
    }
    return {
      at,
      sched,
      free: Math.max(0, sched.slots - b.n),
      cpus: sched.node.cpus != null ? sched.node.cpus - b.cpus : null,
      memory: sched.node.memoryBytes != null ? sched.node.memoryBytes - b.memory : null,
      special,
      heldFor: null,
    }
  })
}

export function requirementKey(req: Requirements): string {
  const r = req.resources
  return [
    [...req.labels].sort().join(','),
    req.docker,
    r.cpus,
    r.memoryBytes,
    r.gpus,
    [...req.hostPaths].sort().join(','),
  ].join('|')
}

function staticFit(req: Requirements, rooms: readonly Room[], key: string): Fit {
  const order: number[] = []
  const refusing: string[] = []
  const unfit = new Map<string, number>()
  for (const r of rooms) {
    const why = whyNot(req, r.sched.node)
    if (why.length) {
      for (const w of why) unfit.set(w, (unfit.get(w) ?? 0) + 1)
      continue
    }
    if (r.sched.refuses !== null) refusing.push(`${r.sched.node.name} (${r.sched.refuses})`)
    order.push(r.at)
  }
  order.sort((a, b) => {
    const x = rooms[a]!
    const y = rooms[b]!
    return (
      x.special - y.special ||
      (x.sched.loadPerCore ?? 0) - (y.sched.loadPerCore ?? 0) ||
      (x.sched.failureRate ?? 0) - (y.sched.failureRate ?? 0) ||
      y.free - x.free ||
      x.at - y.at
    )
  })
  return { order, refusing, unfit, members: new Set(order), cursor: 0, key }
}

/** Jobs in the order they are served: class, then fair share across pipelines, then FIFO. */
function serviceOrder(
  queue: readonly QueuedJob[],
  now: number,
  agingMs: number,
  running: ReadonlyMap<string, number>,
): QueuedJob[] {
  const classes = new Map<number, Map<string, QueuedJob[]>>()
  for (const job of queue) {
    const rank = job.priority === 'hotfix' ? 0 : effectiveRank(job.priority, now - job.readyAt, agingMs)
    let pipelines = classes.get(rank)
    if (!pipelines) classes.set(rank, (pipelines = new Map()))
    const list = pipelines.get(job.pipeline)
    if (list) list.push(job)
    else pipelines.set(job.pipeline, [job])
  }
  const out: QueuedJob[] = []
  const share = new Map(running)
  for (const rank of [...classes.keys()].sort((a, b) => a - b)) {
    const lists = [...classes.get(rank)!.values()].map((jobs) =>
      jobs.sort((a, b) => a.readyAt - b.readyAt || (b.pathMs ?? 0) - (a.pathMs ?? 0)),
    )
    // Round robin weighted by what each pipeline already runs: a min-heap on (share, head's age).
    const heap = new MinHeap<{ jobs: QueuedJob[]; next: number; pipeline: string }>((a, b) => {
      const d = (share.get(a.pipeline) ?? 0) - (share.get(b.pipeline) ?? 0)
      return d || a.jobs[a.next]!.readyAt - b.jobs[b.next]!.readyAt || (a.pipeline < b.pipeline ? -1 : 1)
    })
    for (const jobs of lists) heap.push({ jobs, next: 0, pipeline: jobs[0]!.pipeline })
    while (heap.size) {
      const top = heap.pop()!
      out.push(top.jobs[top.next]!)
      share.set(top.pipeline, (share.get(top.pipeline) ?? 0) + 1)
      if (++top.next < top.jobs.length) heap.push(top)
    }
  }
  return out
}

function roomFor(job: QueuedJob, r: Room): boolean {
  if (r.free <= 0 || r.sched.refuses !== null) return false
  if (r.heldFor !== null && r.heldFor !== job) return false
  if (job.only && !job.only.has(r.sched.node.name)) return false
  const needs = job.requirements.resources
  if (needs.cpus !== null && r.cpus !== null && needs.cpus > r.cpus + 1e-9) return false
  if (needs.memoryBytes !== null && r.memory !== null && needs.memoryBytes > r.memory) return false
  return true
}

/** How many nodes past the best one are looked at for locality. */
const LOCALITY_WINDOW = 32

function place(
  job: QueuedJob,
  fit: Fit,
  rooms: readonly Room[],
  byName: ReadonlyMap<string, number>,
): Room | null {
  const { order } = fit
  // Nodes only fill up within a pass: skip those already full for every job of this kind.
  while (fit.cursor < order.length) {
    const r = rooms[order[fit.cursor]!]!
    if (r.free > 0 && r.sched.refuses === null) break
    fit.cursor++
  }
  let best: Room | null = null
  let i = fit.cursor
  for (; i < order.length; i++) {
    const r = rooms[order[i]!]!
    if (roomFor(job, r)) {
      best = r
      break
    }
  }
  if (!best) return null
  // Among equally generic nodes, prefer the one that last ran the job, then one holding its image.
  if (job.lastNode) {
    const at = byName.get(job.lastNode)
    const last = at === undefined ? undefined : rooms[at]
    if (last && last.special === best.special && roomFor(job, last) && fit.members.has(last.at)) return last
  }
  const image = job.requirements.image
  if (image && !best.sched.images?.has(image)) {
    for (let j = i + 1; j < order.length && j <= i + LOCALITY_WINDOW; j++) {
      const r = rooms[order[j]!]!
      if (r.special !== best.special) break
      if (r.sched.images?.has(image) && roomFor(job, r)) return r
    }
  }
  return best
}

function youngestLow(
  job: QueuedJob,
  fit: Fit,
  rooms: readonly Room[],
  running: readonly RunningJob[],
  taken: ReadonlySet<string>,
): RunningJob | null {
  const fitting = new Set(
    fit.order
      .map((i) => rooms[i]!)
      .filter((r) => r.sched.refuses === null && (!job.only || job.only.has(r.sched.node.name)))
      .map((r) => r.sched.node.name),
  )
  let victim: RunningJob | null = null
  for (const r of running) {
    if (r.priority !== 'low' || taken.has(r.id) || !fitting.has(r.node)) continue
    if (!victim || r.startedAt > victim.startedAt) victim = r
  }
  return victim
}

/**
 * The farm's nodes by why none took the job (Nomad's filtered and exhausted counts): what they
 * lack, then, for those that fit, why not now.
 */
function countsOf(job: QueuedJob, fit: Fit, rooms: readonly Room[]): Record<string, number> {
  const counts: Record<string, number> = {}
  const add = (why: string) => (counts[why] = (counts[why] ?? 0) + 1)
  for (const [why, n] of fit.unfit) counts[why] = n
  for (const i of fit.order) {
    const r = rooms[i]!
    if (r.sched.refuses !== null) add('refuses work')
    else if (job.only && !job.only.has(r.sched.node.name)) add('not open to this run')
    else if (r.free <= 0) add('busy')
    else if (r.heldFor !== null && r.heldFor !== job) add('held for a hotfix')
    else if (!roomFor(job, r)) add('short of free cpu or memory')
  }
  return counts
}

/** The one line a waiting job shows, in the order a release engineer would look. */
function whyWaiting(
  job: QueuedJob,
  fit: Fit,
  rooms: readonly Room[],
  running: readonly RunningJob[],
  now: number,
): string {
  const req = job.requirements
  if (!rooms.length) return 'no node fits: the farm has no nodes'
  if (!fit.order.length) {
    const missing = req.labels.filter((l) =>
      rooms.every((r) => !r.sched.node.labels.some((x) => x.toLowerCase() === l)),
    )
    if (missing.length)
      return `needs label${missing.length > 1 ? 's' : ''} ${missing.map((l) => `\`${l}\``).join(', ')}: no node has ${missing.length > 1 ? 'them' : 'it'}`
    const parts = [...fit.unfit].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${n} ${why}`)
    return `no node fits: ${parts.join('; ')}`
  }
  const open = fit.order.map((i) => rooms[i]!).filter((r) => r.sched.refuses === null)
  const allowed = job.only ? open.filter((r) => job.only!.has(r.sched.node.name)) : open
  if (!allowed.length) {
    const refusing = fit.refusing.length ? fit.refusing : fit.order.map((i) => rooms[i]!.sched.node.name)
    const names = refusing.join(', ')
    return fit.refusing.length
      ? `${names} fit${fit.refusing.length === 1 ? 's' : ''} but ${fit.refusing.length === 1 ? 'takes' : 'take'} no work now`
      : `the nodes that fit (${names}) are not open to this run`
  }
  const held = allowed.filter((r) => r.heldFor !== null && r.heldFor !== job && r.free > 0)
  if (held.length && held.length === allowed.filter((r) => r.free > 0).length)
    return `the free slot on ${held.map((r) => r.sched.node.name).join(', ')} is held for hotfix job ${nameOf(held[0]!.heldFor!)}`
  const small = allowed.filter((r) => r.free > 0)
  if (small.length) {
    const need = [
      req.resources.cpus !== null ? `${req.resources.cpus} cpus` : null,
      req.resources.memoryBytes !== null ? `${formatSize(req.resources.memoryBytes)} memory` : null,
    ].filter(Boolean)
    return `${allowed.length} node${allowed.length > 1 ? 's fit' : ' fits'}; none has ${need.join(' and ')} free now`
  }
  const noted = allowed.filter((r) => r.sched.slotNote).map((r) => r.sched.slotNote)
  const next = nextFree(allowed, running, now)
  const n = allowed.length
  return (
    `${n} node${n > 1 ? 's fit' : ' fits'}; ${n > 1 ? `all ${n} are` : 'it is'} busy` +
    (next ? `; next expected free in ${next}` : '') +
    (noted.length ? ` (${noted.join('; ')})` : '')
  )
}

/** "about 2 min (n1)" from the running jobs' forecasts, or null when none is known. */
function nextFree(rooms: readonly Room[], running: readonly RunningJob[], now: number): string | null {
  const names = new Set(rooms.map((r) => r.sched.node.name))
  let best: { at: number; node: string } | null = null
  for (const r of running) {
    if (!names.has(r.node) || r.expectedMs == null) continue
    const at = r.startedAt + r.expectedMs
    if (!best || at < best.at) best = { at, node: r.node }
  }
  return best ? `${aboutDuration(best.at - now)} (${best.node})` : null
}

/** How reasons name a job: its name when it has one, else its id. */
const nameOf = (job: { id: string; name?: string }): string => job.name ?? job.id

export function aboutDuration(ms: number): string {
  if (ms <= 30_000) return 'under a minute'
  const min = Math.round(ms / 60_000)
  if (min < 90) return `about ${Math.max(1, min)} min`
  return `about ${Math.round(min / 60)} h`
}

/** A binary heap: the scheduler's fair-share queue. */
class MinHeap<T> {
  private readonly items: T[] = []
  constructor(private readonly less: (a: T, b: T) => number) {}
  get size(): number {
    return this.items.length
  }
  push(item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.less(a[i]!, a[p]!) >= 0) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  pop(): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
}
