/**
 * The backend of a long-lived process with a UI (`yardmaster serve`, the Electron app): one
 * history database, the farm service with its health monitor running, the Backend over both,
 * watching the history for other processes' writes. Built here once for every transport.
 */
import type { Farm } from '../core/farm/farm-model'
import { FarmService, type FarmServiceOptions } from '../core/farm/farm-service'
import { openDatabase } from '../core/store/database'
import { NodeMetricsStore } from '../core/store/node-metrics-store'
import { RunStore } from '../core/store/run-store'
import { Backend } from './backend'

export interface AppBackendOptions {
  dataDir: string
  farm: Farm
  version: string
  /** Record the host key of a host no known_hosts knows yet (--accept-new-host-keys). */
  acceptNewHostKeys?: boolean
  /** better-sqlite3's native build for this runtime (Electron's ABI). */
  nativeBinding?: string
  /** Monitor timings, the SSH pool (tests). */
  farmOptions?: Pick<FarmServiceOptions, 'monitor' | 'pool' | 'timeoutMs'>
}

export interface AppBackend {
  backend: Backend
  farmService: FarmService
  /** Stops the monitor, gives the connections back, closes the history. Once. */
  close(): Promise<void>
}

export function createAppBackend(opts: AppBackendOptions): AppBackend {
  const db = openDatabase(opts.dataDir, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {})
  const farmService = new FarmService(opts.farm, {
    ...opts.farmOptions,
    dataDir: opts.dataDir,
    metrics: new NodeMetricsStore(db),
    acceptNewHostKeys: opts.acceptNewHostKeys,
  })
  const backend = new Backend({
    store: new RunStore(db),
    farmService,
    dataDir: opts.dataDir,
    version: opts.version,
  })
  backend.watchStore()
  farmService.start()
  let closing: Promise<void> | null = null
  return {
    backend,
    farmService,
    close: () =>
      (closing ??= (async () => {
        backend.close()
        await farmService.stop()
        db.close()
      })()),
  }
}
