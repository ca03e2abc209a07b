/**
 * Opens the history database (better-sqlite3) in a data directory, in WAL mode so the UI can
 * read while a run writes, and brings its schema up to date.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { MIGRATIONS } from './migrations'

export type Db = Database.Database

export interface OpenOptions {
  /**
   * Path of a better_sqlite3.node built for the running runtime. The Electron shell passes one
   * built for Electron's ABI; Node (CLI, tests) uses the package's own build.
   */
  nativeBinding?: string
  readonly?: boolean
}

export const DB_FILE = 'yardmaster.db'

export function openDatabase(dataDir: string, opts: OpenOptions = {}): Db {
  mkdirSync(dataDir, { recursive: true })
  const db = new Database(join(dataDir, DB_FILE), {
    ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}),
    readonly: opts.readonly ?? false,
  })
  // First: what follows waits for another process opening the same history (a migration) instead
  // of failing with "database is locked".
  db.pragma('busy_timeout = 5000')
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = ON')
  // WAL with synchronous=NORMAL stays consistent after a crash; only the last commits may be lost
  // on power failure, never the database.
  db.pragma('synchronous = NORMAL')
  migrate(db)
  return db
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0
  if (current > latest) {
    throw new Error(
      `the history database has schema version ${current}, newer than this Yardmaster knows (${latest}). ` +
        `Use a newer Yardmaster, or another --data-dir.`,
    )
  }
  if (current === latest) return
  // Two processes opening a new history at once (two terminals) must not both migrate it: each
  // step takes the write lock first (BEGIN IMMEDIATE) and reads the version again under it.
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue
    db.transaction(() => {
      if ((db.pragma('user_version', { simple: true }) as number) >= m.version) return
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
}
