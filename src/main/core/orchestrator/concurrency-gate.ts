/**
 * Concurrency groups, as GitHub's `concurrency:` means them, across every Yardmaster process
 * sharing one history: in a group at most one holder runs and one waits. A newer waiter
 * replaces (cancels) the older one; with cancel-in-progress it also asks the running one to
 * stop. Claims live in SQLite; holders poll them. Claims of finished runs and of dead processes
 * on this host are swept, so a killed orchestrator never blocks a group forever.
 */
import { hostname } from 'node:os'
import type { ConcurrencyClaim, RunStore } from '../store/run-store'
import { toText, type Json } from '../workflow/expressions'
import { processAlive } from './process-alive'
import { sleep } from './wait'

export interface ConcurrencySetting {
  group: string
  cancelInProgress: boolean
}

/** `concurrency:` evaluated: a group name, or `{ group, cancel-in-progress }`; null when absent or empty. */
export function concurrencyOf(value: Json): ConcurrencySetting | null {
  if (typeof value === 'string' || typeof value === 'number') {
    return String(value) ? { group: String(value), cancelInProgress: false } : null
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const group = value.group === undefined || value.group === null ? '' : toText(value.group)
    const c = value['cancel-in-progress']
    return group ? { group, cancelInProgress: c === true || c === 'true' } : null
  }
  return null
}

export interface Holder {
  runId: number
  jobId: number | null
}

export type Acquired = { kind: 'acquired'; claimId: number } | { kind: 'cancelled'; reason: string }

export interface GateOptions {
  /** How often waiting and running holders look at their claim. @default 500 */
  pollMs?: number
  host?: string
  pid?: number
  /** Is this process alive? (tests fake it) */
  alive?: (pid: number) => boolean
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled'])

export class ConcurrencyGate {
  private readonly pollMs: number
  private readonly host: string
  private readonly pid: number
  private readonly alive: (pid: number) => boolean

  constructor(
    private readonly store: RunStore,
    opts: GateOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 500
    this.host = opts.host ?? hostname()
    this.pid = opts.pid ?? process.pid
    this.alive = opts.alive ?? processAlive
  }

  /**
   * Claims a place in the group and waits for it to be this holder's turn. `waiting` is told
   * once who holds the group. Resolves cancelled when a newer holder replaced this one, or the
   * signal aborted.
   */
  async acquire(
    setting: ConcurrencySetting,
    holder: Holder,
    signal: AbortSignal,
    waiting: (heldBy: ConcurrencyClaim) => void = () => {},
  ): Promise<Acquired> {
    const claimId = this.store.exclusive(() => {
      const claims = this.sweep(setting.group)
      for (const c of claims) {
        if (c.state === 'pending') this.store.removeConcurrencyClaim(c.id)
        else if (setting.cancelInProgress) {
          this.store.updateConcurrencyClaim(c.id, {
            cancelRequested: `cancelled by run ${holder.runId} in concurrency group "${setting.group}" (cancel-in-progress)`,
          })
        }
      }
      return this.store.addConcurrencyClaim({
        groupKey: setting.group,
        ...holder,
        state: 'pending',
        host: this.host,
        pid: this.pid,
      })
    })
    let told = false
    for (;;) {
      const outcome = this.store.exclusive((): Acquired | ConcurrencyClaim => {
        const claims = this.sweep(setting.group)
        if (!claims.some((c) => c.id === claimId)) {
          return {
            kind: 'cancelled',
            reason: `replaced by a newer run waiting in concurrency group "${setting.group}"`,
          }
        }
        const running = claims.find((c) => c.state === 'running' && c.id !== claimId)
        if (running) return running
        this.store.updateConcurrencyClaim(claimId, { state: 'running' })
        return { kind: 'acquired', claimId }
      })
      if ('kind' in outcome) return outcome
      if (!told) {
        waiting(outcome)
        told = true
      }
      if (signal.aborted) {
        this.release(claimId)
        return { kind: 'cancelled', reason: 'the run was cancelled while waiting for its concurrency group' }
      }
      await sleep(this.pollMs, signal)
    }
  }

  /** Calls `onCancel` (once) when a newer holder asks this running one to stop. Returns the stopper. */
  watch(claimId: number, onCancel: (reason: string) => void): () => void {
    const timer = setInterval(() => {
      const claim = this.store.concurrencyClaim(claimId)
      if (claim?.cancelRequested) {
        clearInterval(timer)
        onCancel(claim.cancelRequested)
      }
    }, this.pollMs)
    timer.unref()
    return () => clearInterval(timer)
  }

  release(claimId: number): void {
    this.store.removeConcurrencyClaim(claimId)
  }

  /** The group's live claims, after removing those of finished runs and dead local processes. */
  private sweep(group: string): ConcurrencyClaim[] {
    const live: ConcurrencyClaim[] = []
    for (const c of this.store.concurrencyClaims(group)) {
      const dead =
        FINISHED.has(c.runState) || (c.host === this.host && c.pid !== this.pid && !this.alive(c.pid))
      if (dead) this.store.removeConcurrencyClaim(c.id)
      else live.push(c)
    }
    return live
  }
}
