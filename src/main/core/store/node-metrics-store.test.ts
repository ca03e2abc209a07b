import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { HealthSample } from '../farm/health/health-probe'
import { openDatabase, type Db } from './database'
import { HOUR, MINUTE, NodeMetricsStore } from './node-metrics-store'

let dir: string
let db: Db
let store: NodeMetricsStore

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-metrics-'))
  db = openDatabase(dir)
  store = new NodeMetricsStore(db)
})
afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const sample = (at: number, load1: number, extra: Partial<HealthSample> = {}): HealthSample => ({
  at,
  load1,
  cpus: 2,
  cpuPct: load1 * 10,
  memUsedPct: 40,
  rootFreeBytes: 1000 - load1,
  dataFreeBytes: null,
  containersOurs: 1,
  containersOthers: 0,
  engineMs: 5,
  rttMs: 3,
  skewMs: 0,
  ...extra,
})

/** A day's start, so buckets are round. */
const T0 = Date.UTC(2026, 0, 1)

describe('NodeMetricsStore: samples and downsampling', () => {
  it('keeps samples for the last hour and serves them as they are', () => {
    store.addSample('n1', 'online', sample(T0, 1))
    store.addSample('n1', 'degraded', sample(T0 + 5000, 3))
    store.addMiss('n1', 'unreachable', T0 + 10_000)
    store.addSample('n2', 'online', sample(T0, 9))
    const s = store.series('n1', T0, T0 + MINUTE, T0 + MINUTE)
    expect(s.resolution).toBe('sample')
    expect(s.points.map((p) => [p.at, p.reachable, p.load1, p.engineMs])).toEqual([
      [T0, 1, 1, 5],
      [T0 + 5000, 1, 3, 5],
      [T0 + 10_000, 0, null, null],
    ])
  })

  it('rolls complete minutes into averages, maxima and minima, over the samples that had the metric', () => {
    // Minute 0: loads 1, 2, 3 and one miss; minute 1: load 10 (still open at compaction time).
    for (const [i, l] of [1, 2, 3].entries()) store.addSample('n1', 'online', sample(T0 + i * 15_000, l))
    store.addMiss('n1', 'unreachable', T0 + 45_000)
    store.addSample('n1', 'online', sample(T0 + MINUTE + 1000, 10))
    expect(store.compact(T0 + MINUTE + 30_000)).toEqual({ minutes: 1, hours: 0, deleted: 0 })
    // Compacting again changes nothing: each minute is rolled once.
    expect(store.compact(T0 + MINUTE + 31_000)).toEqual({ minutes: 0, hours: 0, deleted: 0 })
    const rows = db.prepare('SELECT * FROM node_rollups').all()
    expect(rows).toEqual([
      expect.objectContaining({
        node: 'n1',
        resolution: MINUTE,
        bucket: T0,
        samples: 4,
        reachable: 3,
        load1: 2,
        load1_max: 3,
        cpu_pct: 20,
        root_free_min: 997,
        engine_ms: 5,
      }),
    ])
  })

  it('rolls minutes into hours weighted by the samples that answered, and drops what is past retention', () => {
    // Hour 0: minute 0 has 1 reachable sample at load 1, minute 1 has 3 at load 5: hour average 4.
    store.addSample('n1', 'online', sample(T0, 1))
    for (let i = 0; i < 3; i++) store.addSample('n1', 'online', sample(T0 + MINUTE + i * 1000, 5))
    store.addMiss('n1', 'unreachable', T0 + MINUTE + 5000)
    store.compact(T0 + 2 * MINUTE)
    store.compact(T0 + HOUR + MINUTE)
    const hour = db.prepare(`SELECT * FROM node_rollups WHERE resolution = ${HOUR}`).get()
    expect(hour).toMatchObject({ bucket: T0, samples: 5, reachable: 4, load1: 4, load1_max: 5 })
    // Two hours on, the samples are gone (kept one hour); the minutes stay two days.
    const r = store.compact(T0 + 2 * HOUR + MINUTE)
    // (The first sample went with the previous compaction: its minute was rolled and an hour old.)
    expect(r.deleted).toBe(4)
    expect(db.prepare('SELECT count(*) AS n FROM node_samples').get()).toEqual({ n: 0 })
    expect(store.compact(T0 + 3 * 24 * HOUR).deleted).toBe(2)
    expect(store.compact(T0 + 100 * 24 * HOUR).deleted).toBe(1)
  })

  it('serves a range at the finest resolution kept that far back', () => {
    for (let m = 0; m < 180; m++) store.addSample('n1', 'online', sample(T0 + m * MINUTE, m % 10))
    const now = T0 + 3 * HOUR
    store.compact(now)
    // Last hour: samples (one a minute here).
    expect(store.series('n1', now - HOUR, now, now)).toMatchObject({ resolution: 'sample' })
    expect(store.series('n1', now - HOUR, now, now).points).toHaveLength(60)
    // Three hours: minutes.
    const minutes = store.series('n1', T0, now, now)
    expect(minutes.resolution).toBe('minute')
    expect(minutes.points).toHaveLength(180)
    expect(minutes.points[7]).toMatchObject({ at: T0 + 7 * MINUTE, load1: 7, samples: 1 })
    // A week: hours.
    const hours = store.series('n1', now - 7 * 24 * HOUR, now, now)
    expect(hours.resolution).toBe('hour')
    expect(hours.points.map((p) => [p.at, p.samples, p.load1, p.load1Max])).toEqual([
      [T0, 60, 4.5, 9],
      [T0 + HOUR, 60, 4.5, 9],
      [T0 + 2 * HOUR, 60, 4.5, 9],
    ])
  })

  it('stays fast: a day of 5-second samples of 20 nodes compacts and charts quickly', () => {
    const insert = db.transaction(() => {
      for (let t = 0; t < 24 * HOUR; t += 5000)
        for (let n = 0; n < 20; n++) store.addSample(`n${n}`, 'online', sample(T0 + t, (t / 5000) % 7))
    })
    insert()
    const t0 = performance.now()
    store.compact(T0 + 24 * HOUR)
    const compactMs = performance.now() - t0
    // The statements the chart runs, to see how SQLite answers them.
    const statements: string[] = []
    const prepare = db.prepare.bind(db)
    const spy = vi.spyOn(db, 'prepare').mockImplementation(((sql: string) => {
      statements.push(sql)
      return prepare(sql)
    }) as typeof db.prepare)
    const t1 = performance.now()
    const day = store.series('n3', T0, T0 + 24 * HOUR, T0 + 24 * HOUR)
    const chartMs = performance.now() - t1
    spy.mockRestore()
    expect(day.resolution).toBe('minute')
    expect(day.points).toHaveLength(24 * 60)
    console.log(
      `metrics store: compact a day of 20 nodes ${Math.round(compactMs)} ms, a day's chart ${chartMs.toFixed(1)} ms`,
    )
    expect(compactMs).toBeLessThan(10_000)
    // What keeps a chart fast, however busy the machine (a time limit would depend on that): it
    // reads only that node's rows of one resolution, through the key and in its order, without
    // scanning the table or sorting.
    expect(statements).toHaveLength(1)
    const plan = (
      db.prepare(`EXPLAIN QUERY PLAN ${statements[0]!}`).all(
        ...statements[0]!
          .split('?')
          .slice(1)
          .map(() => null),
      ) as Array<{ detail: string }>
    ).map((r) => r.detail)
    expect(plan).toEqual([
      expect.stringMatching(
        /^SEARCH node_rollups USING (INDEX \S+|PRIMARY KEY) \(node=\? AND resolution=\? AND bucket>\? AND bucket<\?\)$/,
      ),
    ])
  }, 30_000)
})

describe('NodeMetricsStore: events and admin states', () => {
  it('records events, newest first', () => {
    store.addEvent({ node: 'n1', at: 1, kind: 'health', from: 'offline', to: 'online', reason: null })
    store.addEvent({ node: 'n2', at: 2, kind: 'admin', from: 'active', to: 'draining', reason: 'swap' })
    store.addEvent({
      node: 'n1',
      at: 3,
      kind: 'health',
      from: 'online',
      to: 'unreachable',
      reason: 'network: x',
    })
    expect(store.events('n1').map((e) => e.to)).toEqual(['unreachable', 'online'])
    expect(store.events(null, 2).map((e) => e.at)).toEqual([3, 2])
  })

  it('keeps admin states by node; active is the absence of one', () => {
    store.setAdminState('n1', { kind: 'draining', since: 5, reason: 'disk swap' })
    store.setAdminState('n2', { kind: 'quarantined', since: 6, reason: '3 jobs' })
    store.setAdminState('n1', { kind: 'cordoned', since: 7, reason: null })
    expect([...store.adminStates()]).toEqual([
      ['n1', { kind: 'cordoned', since: 7, reason: null }],
      ['n2', { kind: 'quarantined', since: 6, reason: '3 jobs' }],
    ])
    store.setAdminState('n1', { kind: 'active' })
    expect([...store.adminStates().keys()]).toEqual(['n2'])
  })
})
