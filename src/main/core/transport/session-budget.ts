/**
 * How many sessions (exec channels: commands, the health probe, Docker's dial-stdio) one SSH
 * connection has open at once. OpenSSH's sshd refuses more than `MaxSessions` (10 by default)
 * with "open failed", which would look like a broken node; so the pool waits for a free session
 * instead. Forwarded TCP channels (jump hosts) are not sessions and are not counted.
 */

/** OpenSSH's default MaxSessions. */
export const MAX_SESSIONS_PER_CONNECTION = 10

export class SessionBudget {
  private inUse = 0
  private readonly waiting: Array<{ grant: () => void; refuse: (e: Error) => void }> = []
  private closed: Error | null = null

  constructor(readonly limit: number = MAX_SESSIONS_PER_CONNECTION) {}

  get open(): number {
    return this.inUse
  }

  get queued(): number {
    return this.waiting.length
  }

  /** Sessions that can be taken now without waiting (none once the connection is gone). */
  get free(): number {
    return this.closed ? 0 : Math.max(0, this.limit - this.inUse)
  }

  /** Resolves, once a session is free, with the function that gives it back (idempotent). */
  take(): Promise<() => void> {
    if (this.closed) return Promise.reject(this.closed)
    return new Promise((resolve, reject) => {
      const grant = () => {
        this.inUse++
        let given = false
        resolve(() => {
          if (given) return
          given = true
          this.inUse--
          this.waiting.shift()?.grant()
        })
      }
      if (this.inUse < this.limit) grant()
      else this.waiting.push({ grant, refuse: reject })
    })
  }

  /** The connection is gone: whoever waits is refused with `error`, and so is every later take. */
  close(error: Error): void {
    this.closed = error
    for (const w of this.waiting.splice(0)) w.refuse(error)
  }
}
