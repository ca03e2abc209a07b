import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, type Db } from '../store/database'
import { ClaimStore } from '../store/claim-store'
import { RunStore } from '../store/run-store'
import { QueueStore } from '../store/queue-store'
import { SlotClaims } from './slot-claims'
import { pickNode } from '../scheduler/capability-match'

let dir: string
const dbs: Db[] = []
/** A connection of its own, as another process would have. */
const connect = () => {
  const db = openDatabase(dir)
  dbs.push(db)
  return db
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-claims-'))
})
afterEach(() => {
  dbs.splice(0).forEach((d) => d.close())
  rmSync(dir, { recursive: true, force: true })
})

const nodes = [
  { name: 'n1', slots: 2 },
  { name: 'n2', slots: 1 },
]

describe('SlotClaims', () => {
  it('counts the claims of every holder sharing the history', () => {
    const a = new SlotClaims(new ClaimStore(connect()), { pid: 1, alive: () => true }).start()
    const b = new SlotClaims(new ClaimStore(connect()), { pid: 2, alive: () => true }).start()
    const got = [a, b, a, b, a].map((c) => c.claim(nodes, { runId: null, jobId: null }))
    expect(got.map((g) => g?.node ?? null)).toEqual(['n1', 'n1', 'n2', null, null])
    expect(a.used()).toEqual(
      new Map([
        ['n1', 2],
        ['n2', 1],
      ]),
    )
    b.release(got[1]!.claimId)
    expect(a.claim(nodes, { runId: null, jobId: null })?.node).toBe('n1')
    a.stop()
    b.stop()
  })

  it('gives every claim back when its holder stops', () => {
    const a = new SlotClaims(new ClaimStore(connect()), { alive: () => true }).start()
    const b = new SlotClaims(new ClaimStore(connect()), { alive: () => true }).start()
    a.claim(nodes, { runId: null, jobId: null })
    a.claim(nodes, { runId: null, jobId: null })
    a.stop()
    expect(b.used()).toEqual(new Map())
    b.stop()
  })

  it("frees a holder's slots when its lease runs out, and marks its unfinished jobs lost", () => {
    let now = 1_000
    const clock = () => now
    const db = connect()
    const runs = new RunStore(db)
    // Another host: only the lease tells whether it lives.
    const dead = new SlotClaims(new ClaimStore(db), { now: clock, host: 'far', leaseMs: 10_000 }).start()
    const created = runs.createRun({
      holder: dead.holder,
      workflowName: 'w',
      workflowFile: '/w.yml',
      farmFile: null,
      jobs: [
        { key: 'build', name: 'build', needs: [], runsOn: [], steps: ['a', 'b'] },
        { key: 'done', name: 'done', needs: [], runsOn: [], steps: ['a'] },
      ],
    })
    runs.setRunState(created.runId, 'running')
    runs.updateJob(created.jobIds.get('build')!, { state: 'running' })
    runs.updateStep(created.stepIds.get('build')![0]!, { state: 'running' })
    runs.updateJob(created.jobIds.get('done')!, { state: 'succeeded' })
    const claim = dead.claim(nodes, { runId: created.runId, jobId: created.jobIds.get('build')! })!
    runs.startAttempt({
      jobId: created.jobIds.get('build')!,
      node: claim.node,
      claimId: claim.claimId,
      holder: dead.holder,
      at: now,
    })
    const told = vi.fn()
    const live = new SlotClaims(new ClaimStore(connect()), { now: clock, lost: told }).start()
    now += 10_000
    expect(live.used()).toEqual(new Map([['n1', 1]]))
    now += 1
    expect(live.used()).toEqual(new Map())
    expect(told).toHaveBeenCalledWith(
      [{ jobId: created.jobIds.get('build')!, runId: created.runId, key: 'build' }],
      expect.stringMatching(
        /^lost: the Yardmaster process running it \(pid \d+ on far\) stopped renewing its lease$/,
      ),
    )
    const detail = runs.getRun(created.runId)
    expect(detail.run.state).toBe('failed')
    const build = detail.jobs.find((j) => j.key === 'build')!
    expect(build.state).toBe('failed')
    expect(build.reason).toMatch(/^lost: /)
    expect(build.steps.map((s) => s.state)).toEqual(['failed', 'skipped'])
    // Its attempt is lost (not failed by the job), ended when it was reaped.
    expect(build.attempts).toEqual([
      {
        number: 1,
        nodeName: 'n1',
        state: 'lost',
        reason: build.reason,
        startedAt: 1_000,
        finishedAt: 11_001,
      },
    ])
    expect(detail.jobs.find((j) => j.key === 'done')!.state).toBe('succeeded')
    live.stop()
  })

  it('queues a run whose holder died to be taken over when it came from the queue, leaving it as it was', () => {
    const db = connect()
    const runs = new RunStore(db)
    const alive = new Set([1, 2])
    const dead = new SlotClaims(new ClaimStore(db), { host: 'h', pid: 1, alive: (p) => alive.has(p) }).start()
    const created = runs.createRun({
      holder: dead.holder,
      workflowName: 'w',
      workflowFile: '/w.yml',
      farmFile: null,
      jobs: [
        { key: 'build', name: 'build', needs: [], runsOn: [], steps: [] },
        { key: 'test', name: 'test', needs: ['build'], runsOn: [], steps: [] },
      ],
    })
    runs.setRunState(created.runId, 'running')
    runs.updateJob(created.jobIds.get('build')!, { state: 'succeeded' })
    runs.updateJob(created.jobIds.get('test')!, { state: 'running' })
    const attempt = runs.startAttempt({
      jobId: created.jobIds.get('test')!,
      node: 'n1',
      claimId: 1,
      holder: dead.holder,
      at: 1,
    })
    const queue = new QueueStore(db)
    const entry = queue.add('/w.yml', { inputs: { a: '1' } }, 'high', 1)
    queue.started(entry.id, created.runId)
    alive.delete(1)
    new SlotClaims(new ClaimStore(connect()), { host: 'h', pid: 2, alive: (p) => alive.has(p) })
      .start()
      .reap()
    expect(queue.waiting()).toEqual([
      expect.objectContaining({
        workflowFile: '/w.yml',
        priority: 'high',
        trigger: { inputs: { a: '1' }, takeOver: { runId: created.runId } },
      }),
    ])
    // Left for the next console: still running, its attempt too (not lost, not fenced), no one's.
    const left = runs.getRun(created.runId)
    expect(left.run.state).toBe('running')
    expect(left.jobs.map((j) => j.state)).toEqual(['succeeded', 'running'])
    expect(left.jobs[1]!.attempts.map((a) => a.state)).toEqual(['running'])
    expect(runs.fencesOn('n1')).toEqual([])
    const taken = runs.takeOverRun(created.runId, 'next')
    expect(taken.running.get(created.jobIds.get('test')!)).toMatchObject({
      attemptId: attempt.id,
      number: 1,
      node: 'n1',
    })
    // One that cannot be taken over after all is lost, and what it ran is fenced.
    new ClaimStore(db).abandonTakeOver(created.runId, 'lost: could not be taken over', 5)
    const lost = runs.getRun(created.runId)
    expect(lost.run.state).toBe('failed')
    expect(lost.jobs[1]).toMatchObject({ state: 'failed', reason: 'lost: could not be taken over' })
    expect(runs.fencesOn('n1').map((f) => f.attemptId)).toEqual([attempt.id])
    // A run started from a terminal is not queued again.
    const cli = new SlotClaims(new ClaimStore(db), { host: 'h', pid: 3, alive: (p) => p !== 3 }).start()
    const other = runs.createRun({
      holder: cli.holder,
      workflowName: 'w',
      workflowFile: '/w.yml',
      farmFile: null,
      jobs: [],
    })
    runs.setRunState(other.runId, 'running')
    new SlotClaims(new ClaimStore(connect()), { host: 'h', pid: 4, alive: (p) => p !== 3 }).start().reap()
    expect(queue.waiting()).toHaveLength(1)
    expect(runs.getRun(other.runId).run.state).toBe('failed')
  })

  it('never reaps a live process on this host whose lease ran out (it stalled); one elsewhere it does, and that one is told', () => {
    let now = 0
    const clock = () => now
    const stalled = new SlotClaims(new ClaimStore(connect()), {
      now: clock,
      host: 'here',
      pid: 1,
      alive: () => true,
      leaseMs: 1_000,
    }).start()
    stalled.claim(nodes, { runId: null, jobId: null })
    const other = new SlotClaims(new ClaimStore(connect()), {
      now: clock,
      host: 'here',
      pid: 2,
      alive: () => true,
    }).start()
    now += 60_000
    expect(other.used().get('n1')).toBe(1)
    stalled.stop()
    const lostLease = vi.fn()
    const far = new SlotClaims(new ClaimStore(connect()), {
      now: clock,
      host: 'far',
      leaseMs: 1_000,
      leaseLost: lostLease,
    }).start()
    far.claim(nodes, { runId: null, jobId: null })
    now += 60_000
    expect(other.used().get('n1')).toBeUndefined()
    far.heartbeat()
    expect(lostLease).toHaveBeenCalledOnce()
  })

  it('reaps a holder on this host whose process is gone, without waiting for its lease', () => {
    const alive = new Set([1, 2])
    const opts = { host: 'here', alive: (pid: number) => alive.has(pid) }
    const a = new SlotClaims(new ClaimStore(connect()), { ...opts, pid: 1 }).start()
    const b = new SlotClaims(new ClaimStore(connect()), { ...opts, pid: 2 }).start()
    a.claim(nodes, { runId: null, jobId: null })
    expect(b.used().get('n1')).toBe(1)
    alive.delete(1)
    expect(b.used().get('n1')).toBeUndefined()
    b.stop()
  })

  it('renews its lease on the heartbeat, and registers again after being reaped', () => {
    vi.useFakeTimers()
    try {
      let now = 0
      const clock = () => now
      const a = new SlotClaims(new ClaimStore(connect()), {
        now: clock,
        host: 'a',
        heartbeatMs: 1_000,
        leaseMs: 5_000,
      }).start()
      const b = new SlotClaims(new ClaimStore(connect()), { now: clock, host: 'b', leaseMs: 5_000 }).start()
      a.claim(nodes, { runId: null, jobId: null })
      for (let i = 0; i < 20; i++) {
        now += 1_000
        vi.advanceTimersByTime(1_000)
      }
      b.heartbeat()
      expect(b.used().get('n1')).toBe(1)
      // a stalls (a laptop asleep) past its lease: b reaps it; a's next heartbeat registers again.
      now += 6_000
      b.heartbeat()
      expect(b.used().get('n1')).toBeUndefined()
      a.heartbeat()
      expect(a.claim(nodes, { runId: null, jobId: null })).not.toBeNull()
      expect(b.used().get('n1')).toBe(1)
      a.stop()
      b.stop()
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('pickNode, as claims choose among candidates', () => {
  const mostFree = (c: typeof nodes, used: Map<string, number>) => pickNode(c, used)?.name ?? null
  it('takes the candidate with the most free slots, the first on ties, none when all are full', () => {
    expect(mostFree(nodes, new Map())).toBe('n1')
    expect(mostFree(nodes, new Map([['n1', 1]]))).toBe('n1')
    expect(mostFree([{ name: 'x', slots: 1 }, ...nodes], new Map([['n1', 1]]))).toBe('x')
    expect(
      mostFree(
        nodes,
        new Map([
          ['n1', 2],
          ['n2', 1],
        ]),
      ),
    ).toBeNull()
  })
})
