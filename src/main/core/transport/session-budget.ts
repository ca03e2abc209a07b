/**
 * How many sessions (exec channels: commands, the health probe, Docker's dial-stdio) one SSH
 * connection has open at once. OpenSSH's sshd refuses more than `MaxSessions` (10 by default)
 * with "open failed", which would look like a broken node; so the pool takes sessions only while
 * one is free, and otherwise waits for one (or opens another connection). Forwarded TCP channels (jump hosts) are not sessions and are not counted.
 */

/** OpenSSH's default MaxSessions. */
export const MAX_SESSIONS_PER_CONNECTION = 10

export class SessionBudget {
  private inUse = 0
  private closed = false

  constructor(readonly limit: number = MAX_SESSIONS_PER_CONNECTION) {}

  get open(): number {
    return this.inUse
  }

  /** Sessions that can be taken now (none once the connection is gone). */
  get free(): number {
    return this.closed ? 0 : Math.max(0, this.limit - this.inUse)
  }

  /**
   * Takes a session if one is free: the function that gives it back (idempotent), or null. Who
   * waits for one is the pool's to decide: a session may come free on another connection.
   */
  take(): (() => void) | null {
    if (this.free <= 0) return null
    this.inUse++
    let given = false
    return () => {
      if (given) return
      given = true
      this.inUse--
    }
  }

  /** The connection is gone: no session is taken from it again. */
  close(): void {
    this.closed = true
  }
}
