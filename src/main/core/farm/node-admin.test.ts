import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, type Db } from '../store/database'
import { NodeMetricsStore } from '../store/node-metrics-store'
import { applyAdminCommand, recordJobOutcome } from './node-admin'

let dir: string
let db: Db
let store: NodeMetricsStore
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-admin-'))
  db = openDatabase(dir)
  store = new NodeMetricsStore(db)
})
afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const infra = (at: number, reason = 'Not connected') => ({ kind: 'infrastructure' as const, at, reason })

describe('recordJobOutcome', () => {
  it('quarantines a node at the third infrastructure failure in a row, once, with an event', () => {
    expect(recordJobOutcome(store, 'n1', infra(1))).toEqual({ infraFailures: 1, quarantined: null })
    expect(recordJobOutcome(store, 'n1', infra(2))).toEqual({ infraFailures: 2, quarantined: null })
    const why = '3 jobs in a row failed for infrastructure reasons (last: engine failed)'
    expect(recordJobOutcome(store, 'n1', infra(3, 'engine failed'))).toEqual({
      infraFailures: 3,
      quarantined: why,
    })
    expect(store.adminStates().get('n1')).toEqual({ kind: 'quarantined', since: 3, reason: why })
    // Already quarantined: counted, not quarantined again.
    expect(recordJobOutcome(store, 'n1', infra(4))).toEqual({ infraFailures: 4, quarantined: null })
    expect(store.events('n1')).toEqual([
      { node: 'n1', at: 3, kind: 'admin', from: 'active', to: 'quarantined', reason: why },
    ])
  })

  it('starts the count again when a job ran, and when an admin resumes the node', () => {
    recordJobOutcome(store, 'n1', infra(1))
    recordJobOutcome(store, 'n1', infra(2))
    expect(recordJobOutcome(store, 'n1', { kind: 'worked', at: 3 })).toEqual({
      infraFailures: 0,
      quarantined: null,
    })
    for (let at = 4; at <= 6; at++) recordJobOutcome(store, 'n1', infra(at))
    expect(store.adminStates().get('n1')?.kind).toBe('quarantined')
    expect(applyAdminCommand(store, 'n1', { type: 'resume', at: 7 })).toMatchObject({
      ok: true,
      to: { kind: 'active' },
    })
    expect(store.infraFailures().get('n1')).toBeUndefined()
    expect(recordJobOutcome(store, 'n1', infra(8))).toEqual({ infraFailures: 1, quarantined: null })
  })

  it('leaves a node an admin took out as the admin left it', () => {
    applyAdminCommand(store, 'n1', { type: 'cordon', at: 1, reason: 'disk swap' })
    for (let at = 2; at <= 4; at++) recordJobOutcome(store, 'n1', infra(at))
    expect(store.adminStates().get('n1')).toEqual({ kind: 'cordoned', since: 1, reason: 'disk swap' })
    expect(store.infraFailures().get('n1')).toBe(3)
  })

  it('counts every outcome when two processes record at once (one transaction each)', () => {
    const other = openDatabase(dir)
    try {
      const theirs = new NodeMetricsStore(other)
      for (let i = 0; i < 5; i++) {
        recordJobOutcome(store, 'n1', infra(i * 2))
        recordJobOutcome(theirs, 'n1', infra(i * 2 + 1))
      }
      expect(store.infraFailures().get('n1')).toBe(10)
      expect(store.events('n1')).toHaveLength(1)
    } finally {
      other.close()
    }
  })
})

describe('applyAdminCommand', () => {
  it('refuses an illegal move and writes nothing', () => {
    expect(applyAdminCommand(store, 'n1', { type: 'resume', at: 1 })).toEqual({
      ok: false,
      error: 'the node is active already: there is nothing to resume',
      state: { kind: 'active' },
    })
    expect(store.events('n1')).toEqual([])
  })
})
