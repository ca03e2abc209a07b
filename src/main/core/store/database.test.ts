import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DB_FILE, migrate, openDatabase, type Db } from './database'
import { MIGRATIONS } from './migrations'

const LATEST = MIGRATIONS[MIGRATIONS.length - 1]!.version

let dir: string
const open: Db[] = []
function track(db: Db): Db {
  open.push(db)
  return db
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-db-'))
})
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('migrations', () => {
  it('are numbered from 1 without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1))
  })
})

describe('openDatabase', () => {
  it('creates the data directory and the database file in it', () => {
    const dataDir = join(dir, 'nested', 'data')
    track(openDatabase(dataDir))
    expect(existsSync(join(dataDir, DB_FILE))).toBe(true)
  })

  it('turns on WAL, foreign keys and a busy timeout', () => {
    const db = track(openDatabase(dir))
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000)
    expect(db.pragma('synchronous', { simple: true })).toBe(1) // NORMAL
  })

  it('brings the schema to the latest version', () => {
    const db = track(openDatabase(dir))
    expect(db.pragma('user_version', { simple: true })).toBe(LATEST)
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{
        name: string
      }>
    ).map((t) => t.name)
    expect(tables).toEqual(expect.arrayContaining(['jobs', 'log_lines', 'runs', 'steps']))
  })

  it('can be opened again without re-running migrations or losing data', () => {
    const first = track(openDatabase(dir))
    first
      .prepare(
        "INSERT INTO runs (workflow_name, workflow_file, state, created_at) VALUES ('w', 'f', 'queued', 1)",
      )
      .run()
    first.close()
    const again = track(openDatabase(dir))
    expect(again.pragma('user_version', { simple: true })).toBe(LATEST)
    expect(again.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 1 })
  })

  it('refuses a database from a newer Yardmaster, and leaves it alone', () => {
    const raw = new Database(join(dir, DB_FILE))
    raw.pragma(`user_version = ${LATEST + 1}`)
    raw.close()
    expect(() => openDatabase(dir)).toThrow(
      `the history database has schema version ${LATEST + 1}, newer than this Yardmaster knows (${LATEST}). ` +
        'Use a newer Yardmaster, or another --data-dir.',
    )
    const check = track(new Database(join(dir, DB_FILE)))
    expect(check.pragma('user_version', { simple: true })).toBe(LATEST + 1)
  })

  it('loads the native binding it is given (as the Electron shell does)', () => {
    const binding = join(
      require.resolve('better-sqlite3/package.json'),
      '..',
      'build',
      'Release',
      'better_sqlite3.node',
    )
    const db = track(openDatabase(dir, { nativeBinding: binding }))
    expect(db.pragma('user_version', { simple: true })).toBe(LATEST)
    expect(() => openDatabase(join(dir, 'other'), { nativeBinding: join(dir, 'missing.node') })).toThrow()
  })

  it('opens an existing database read-only', () => {
    track(openDatabase(dir)).close()
    const ro = track(openDatabase(dir, { readonly: true }))
    expect(ro.readonly).toBe(true)
    expect(() =>
      ro
        .prepare(
          "INSERT INTO runs (workflow_name, workflow_file, state, created_at) VALUES ('w','f','queued',1)",
        )
        .run(),
    ).toThrow(/readonly/)
  })
})

describe('migrate', () => {
  it('applies a migration and its version together, or neither', () => {
    const db = track(new Database(':memory:'))
    db.exec('CREATE TABLE runs (id INTEGER)') // makes migration 1 fail half way
    expect(() => migrate(db)).toThrow(/table runs already exists/)
    expect(db.pragma('user_version', { simple: true })).toBe(0)
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").get()).toBeUndefined()
  })

  it('is a no-op on an up-to-date database', () => {
    const db = track(new Database(':memory:'))
    migrate(db)
    const schema = db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()
    migrate(db)
    expect(db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(schema)
  })
})
