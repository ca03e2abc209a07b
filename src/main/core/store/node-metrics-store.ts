/**
 * Node health in the history database (migration 4): samples, their rollups, state change
 * events and admin states. The only module that knows that SQL.
 *
 * Downsampling: samples are rolled up into minute buckets as soon as a minute is complete, and
 * minutes into hours as soon as an hour is; samples are kept an hour, minutes two days, hours
 * 90 days (`compact`). `series` picks the finest resolution that still covers the range, so a
 * chart never reads more than about a thousand rows.
 */
import type { HealthSample } from '../farm/health/health-probe'
import type { AdminState, HealthKind } from '../farm/health/node-state'
import type { Statement } from 'better-sqlite3'
import type { Db } from './database'

export const MINUTE = 60_000
export const HOUR = 3_600_000

export interface RetentionOptions {
  /** @default 1 hour */
  samplesMs: number
  /** @default 2 days */
  minutesMs: number
  /** @default 90 days */
  hoursMs: number
}

export const DEFAULT_RETENTION: RetentionOptions = {
  samplesMs: HOUR,
  minutesMs: 2 * 24 * HOUR,
  hoursMs: 90 * 24 * HOUR,
}

import type { NodeEventRecord, Series, SeriesPoint } from '../../../shared/model'

export type { NodeEventRecord, Series, SeriesPoint }

const METRICS = `load1, cpus, cpu_pct, mem_used_pct, root_free, data_free, containers_ours, containers_others, engine_ms, rtt_ms, skew_ms`

export class NodeMetricsStore {
  private readonly retention: RetentionOptions
  private readonly insertSample: Statement

  constructor(
    private readonly db: Db,
    retention: Partial<RetentionOptions> = {},
  ) {
    this.retention = { ...DEFAULT_RETENTION, ...retention }
    // Prepared once: every node adds a sample every few seconds.
    this.insertSample = db.prepare(
      `INSERT INTO node_samples (node, at, state, ${METRICS})
       VALUES (@node, @at, @state, @load1, @cpus, @cpuPct, @memUsedPct, @rootFreeBytes, @dataFreeBytes,
               @containersOurs, @containersOthers, @engineMs, @rttMs, @skewMs)`,
    )
  }

  addSample(node: string, state: HealthKind, s: HealthSample): void {
    this.insertSample.run({ node, state, ...s })
  }

  /** A sample for a node that did not answer: the state, no metrics. */
  addMiss(node: string, state: HealthKind, at: number): void {
    this.db.prepare(`INSERT INTO node_samples (node, at, state) VALUES (?, ?, ?)`).run(node, at, state)
  }

  /**
   * Rolls up every complete minute and hour not rolled up yet, then drops what is past its
   * retention. Idempotent, and safe to call from two processes (rollups are inserted once).
   */
  compact(now: number): { minutes: number; hours: number; deleted: number } {
    return this.db
      .transaction(() => {
        const minuteEnd = Math.floor(now / MINUTE) * MINUTE
        const lastMinute = this.db
          .prepare(`SELECT max(bucket) AS b FROM node_rollups WHERE resolution = ${MINUTE}`)
          .get() as { b: number | null }
        const minutes = this.db
          .prepare(
            `INSERT OR IGNORE INTO node_rollups
             (node, resolution, bucket, samples, reachable, load1, load1_max, cpu_pct, cpu_pct_max,
              mem_used_pct, mem_used_pct_max, root_free_min, data_free_min, containers_ours,
              containers_others, engine_ms, engine_ms_max, rtt_ms, skew_ms)
           SELECT node, ${MINUTE}, (at / ${MINUTE}) * ${MINUTE} AS b, count(*),
                  sum(state IN ('online', 'degraded')), avg(load1), max(load1), avg(cpu_pct), max(cpu_pct),
                  avg(mem_used_pct), max(mem_used_pct), min(root_free), min(data_free), avg(containers_ours),
                  avg(containers_others), avg(engine_ms), max(engine_ms), avg(rtt_ms), avg(skew_ms)
           FROM node_samples
           WHERE at >= @from AND at < @to
           GROUP BY node, b`,
          )
          .run({ from: lastMinute.b === null ? 0 : lastMinute.b + MINUTE, to: minuteEnd }).changes

        const hourEnd = Math.floor(now / HOUR) * HOUR
        const lastHour = this.db
          .prepare(`SELECT max(bucket) AS b FROM node_rollups WHERE resolution = ${HOUR}`)
          .get() as { b: number | null }
        // Averages of averages, weighted by the samples that answered (those carry the metrics).
        const w = (col: string) =>
          `sum(${col} * reachable) / nullif(sum(CASE WHEN ${col} IS NOT NULL THEN reachable END), 0)`
        const hours = this.db
          .prepare(
            `INSERT OR IGNORE INTO node_rollups
             (node, resolution, bucket, samples, reachable, load1, load1_max, cpu_pct, cpu_pct_max,
              mem_used_pct, mem_used_pct_max, root_free_min, data_free_min, containers_ours,
              containers_others, engine_ms, engine_ms_max, rtt_ms, skew_ms)
           SELECT node, ${HOUR}, (bucket / ${HOUR}) * ${HOUR} AS b, sum(samples), sum(reachable),
                  ${w('load1')}, max(load1_max), ${w('cpu_pct')}, max(cpu_pct_max), ${w('mem_used_pct')},
                  max(mem_used_pct_max), min(root_free_min), min(data_free_min), ${w('containers_ours')},
                  ${w('containers_others')}, ${w('engine_ms')}, max(engine_ms_max), ${w('rtt_ms')}, ${w('skew_ms')}
           FROM node_rollups
           WHERE resolution = ${MINUTE} AND bucket >= @from AND bucket < @to
           GROUP BY node, b`,
          )
          .run({ from: lastHour.b === null ? 0 : lastHour.b + HOUR, to: hourEnd }).changes

        // Only what is rolled up may go: samples of the current minute stay whatever their age.
        const keepSamples = Math.min(now - this.retention.samplesMs, minuteEnd)
        const keepMinutes = Math.min(now - this.retention.minutesMs, hourEnd)
        const deleted =
          this.db.prepare(`DELETE FROM node_samples WHERE at < ?`).run(keepSamples).changes +
          this.db
            .prepare(`DELETE FROM node_rollups WHERE resolution = ${MINUTE} AND bucket < ?`)
            .run(keepMinutes).changes +
          this.db
            .prepare(`DELETE FROM node_rollups WHERE resolution = ${HOUR} AND bucket < ?`)
            .run(now - this.retention.hoursMs).changes
        return { minutes, hours, deleted }
        // IMMEDIATE: it reads, then writes (a deferred one fails at once if another process wrote between).
      })
      .immediate()
  }

  /** A node's series from `from` to `to`, at the finest resolution kept that far back. */
  series(node: string, from: number, to: number, now = Date.now()): Series {
    if (from >= now - this.retention.samplesMs) {
      const rows = this.db
        .prepare(
          `SELECT at, state, ${METRICS} FROM node_samples WHERE node = ? AND at >= ? AND at <= ? ORDER BY at`,
        )
        .all(node, from, to) as SampleRow[]
      return { resolution: 'sample', points: rows.map(samplePoint) }
    }
    const resolution = from >= now - this.retention.minutesMs ? MINUTE : HOUR
    const rows = this.db
      .prepare(
        `SELECT * FROM node_rollups WHERE node = ? AND resolution = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket`,
      )
      .all(node, resolution, Math.floor(from / resolution) * resolution, to) as RollupRow[]
    return { resolution: resolution === MINUTE ? 'minute' : 'hour', points: rows.map(rollupPoint) }
  }

  addEvent(e: NodeEventRecord): void {
    this.db
      .prepare(
        `INSERT INTO node_events (node, at, kind, from_state, to_state, reason) VALUES (@node, @at, @kind, @from, @to, @reason)`,
      )
      .run(e)
  }

  /** The newest events first; of one node, or of all. */
  events(node: string | null = null, limit = 100): NodeEventRecord[] {
    const rows = (
      node === null
        ? this.db.prepare(`SELECT * FROM node_events ORDER BY at DESC, id DESC LIMIT ?`).all(limit)
        : this.db
            .prepare(`SELECT * FROM node_events WHERE node = ? ORDER BY at DESC, id DESC LIMIT ?`)
            .all(node, limit)
    ) as Array<{
      node: string
      at: number
      kind: 'health' | 'admin'
      from_state: string
      to_state: string
      reason: string | null
    }>
    return rows.map((r) => ({
      node: r.node,
      at: r.at,
      kind: r.kind,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
    }))
  }

  /** Jobs in a row that failed on each node for infrastructure reasons (nodes not listed: 0). */
  infraFailures(): Map<string, number> {
    const rows = this.db.prepare(`SELECT node, count FROM node_infra_failures`).all() as Array<{
      node: string
      count: number
    }>
    return new Map(rows.map((r) => [r.node, r.count]))
  }

  setInfraFailures(node: string, count: number, at: number, reason: string | null = null): void {
    if (count === 0) this.db.prepare(`DELETE FROM node_infra_failures WHERE node = ?`).run(node)
    else
      this.db
        .prepare(
          `INSERT INTO node_infra_failures (node, count, last_reason, at) VALUES (?, ?, ?, ?)
           ON CONFLICT (node) DO UPDATE SET count = excluded.count, last_reason = excluded.last_reason, at = excluded.at`,
        )
        .run(node, count, reason, at)
  }

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE): read-modify-write across processes. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  /** Admin states by node name (nodes not listed are active). */
  adminStates(): Map<string, AdminState> {
    const rows = this.db.prepare(`SELECT node, state, reason, since FROM node_admin`).all() as Array<{
      node: string
      state: 'draining' | 'cordoned' | 'quarantined'
      reason: string | null
      since: number
    }>
    return new Map(
      rows.map((r) => [
        r.node,
        r.state === 'quarantined'
          ? { kind: 'quarantined', since: r.since, reason: r.reason ?? '' }
          : { kind: r.state, since: r.since, reason: r.reason },
      ]),
    )
  }

  setAdminState(node: string, state: AdminState): void {
    if (state.kind === 'active') this.db.prepare(`DELETE FROM node_admin WHERE node = ?`).run(node)
    else
      this.db
        .prepare(
          `INSERT INTO node_admin (node, state, reason, since) VALUES (?, ?, ?, ?)
           ON CONFLICT (node) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since`,
        )
        .run(node, state.kind, state.reason, state.since)
  }
}

interface SampleRow {
  at: number
  state: HealthKind
  load1: number | null
  cpus: number | null
  cpu_pct: number | null
  mem_used_pct: number | null
  root_free: number | null
  data_free: number | null
  containers_ours: number | null
  containers_others: number | null
  engine_ms: number | null
  rtt_ms: number | null
  skew_ms: number | null
}

function samplePoint(r: SampleRow): SeriesPoint {
  return {
    at: r.at,
    samples: 1,
    reachable: r.state === 'online' || r.state === 'degraded' ? 1 : 0,
    load1: r.load1,
    load1Max: r.load1,
    cpuPct: r.cpu_pct,
    cpuPctMax: r.cpu_pct,
    memUsedPct: r.mem_used_pct,
    rootFreeBytes: r.root_free,
    dataFreeBytes: r.data_free,
    containersOurs: r.containers_ours,
    containersOthers: r.containers_others,
    engineMs: r.engine_ms,
    engineMsMax: r.engine_ms,
    rttMs: r.rtt_ms,
    skewMs: r.skew_ms,
  }
}

interface RollupRow {
  bucket: number
  samples: number
  reachable: number
  load1: number | null
  load1_max: number | null
  cpu_pct: number | null
  cpu_pct_max: number | null
  mem_used_pct: number | null
  root_free_min: number | null
  data_free_min: number | null
  containers_ours: number | null
  containers_others: number | null
  engine_ms: number | null
  engine_ms_max: number | null
  rtt_ms: number | null
  skew_ms: number | null
}

function rollupPoint(r: RollupRow): SeriesPoint {
  return {
    at: r.bucket,
    samples: r.samples,
    reachable: r.reachable,
    load1: r.load1,
    load1Max: r.load1_max,
    cpuPct: r.cpu_pct,
    cpuPctMax: r.cpu_pct_max,
    memUsedPct: r.mem_used_pct,
    rootFreeBytes: r.root_free_min,
    dataFreeBytes: r.data_free_min,
    containersOurs: r.containers_ours,
    containersOthers: r.containers_others,
    engineMs: r.engine_ms,
    engineMsMax: r.engine_ms_max,
    rttMs: r.rtt_ms,
    skewMs: r.skew_ms,
  }
}
