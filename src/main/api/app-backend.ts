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
import { Orchestrator, type OrchestratorOptions } from '../core/orchestrator/orchestrator'
import { outOfService } from '../core/farm/node-admin'
import { thresholdsFor } from '../core/farm/health/health-probe'
import { WorkflowCatalog } from '../core/workflow/workflow-catalog'
import { envKeySource, SecretStore, type SecretKeySource } from '../core/secrets/secret-store'
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
  /** Poll and lease timings (tests). */
  orchestratorOptions?: Pick<OrchestratorOptions, 'pollMs' | 'heartbeatMs' | 'leaseMs'>
  /** Where the key of the stored secrets comes from. @default the passphrase in YARDMASTER_SECRETS_KEY */
  secretKeys?: SecretKeySource
}

export interface AppBackend {
  backend: Backend
  farmService: FarmService
  orchestrator: Orchestrator
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
  const metrics = new NodeMetricsStore(db)
  const store = new RunStore(db)
  const secrets = new SecretStore(opts.dataDir, opts.secretKeys ?? envKeySource())
  // The orchestrator tells the backend what changed; the backend is made just below.
  let emit: Backend['emit'] | null = null
  const orchestrator = new Orchestrator({
    db,
    farm: () => farmService.farm,
    sessions: () => farmService.sessions,
    unavailable: () => outOfService(metrics),
    // The health monitor's latest sample: a node under pressure takes fewer new jobs.
    health: (node) => {
      try {
        return { sample: farmService.view(node.name).sample, limits: thresholdsFor(farmService.farm, node) }
      } catch {
        return null // no longer in the farm (its file was edited): its declared slots
      }
    },
    changed: ({ runId }) => {
      emit?.('queue.changed', {})
      if (runId !== undefined) emit?.('run.changed', { runId })
    },
    logsStored: (runId, lastSeq) => emit?.('log.appended', { runId, lastSeq }),
    secrets,
    ...opts.orchestratorOptions,
  })
  const backend = new Backend({
    store,
    farmService,
    orchestrator,
    workflows: new WorkflowCatalog(
      opts.dataDir,
      () => store.workflowFiles(),
      // A damaged secrets file lists every named secret as missing; setting one says why.
      () => {
        try {
          return secrets.list().map((s) => s.name)
        } catch {
          return []
        }
      },
    ),
    secrets,
    dataDir: opts.dataDir,
    version: opts.version,
  })
  emit = (event, payload) => backend.emit(event, payload)
  backend.watchStore()
  farmService.start()
  orchestrator.start()
  let closing: Promise<void> | null = null
  return {
    backend,
    farmService,
    orchestrator,
    close: () =>
      (closing ??= (async () => {
        // Runs that got no slot yet are queued again for the next start; running ones are cancelled.
        await orchestrator.stop()
        backend.close()
        await farmService.stop()
        db.close()
      })()),
  }
}
