/** The `--json` report of a run, the same whichever process ran it (the contract scripts read). */
import type { RunStore } from '../core/store/run-store'

/** The `--json` report: the run's conclusion and, per job, node, outputs and per step outcome and conclusion. */
export function runReport(store: RunStore, runId: number) {
  const { run, jobs } = store.getRun(runId)
  const conclusion = (s: string) =>
    ({ succeeded: 'success', failed: 'failure', cancelled: 'cancelled', skipped: 'skipped' })[s] ?? s
  return {
    runId: run.id,
    conclusion: conclusion(run.state),
    jobs: Object.fromEntries(
      jobs.map((j) => [
        j.key,
        {
          node: j.nodeName,
          conclusion: conclusion(j.state),
          outputs: j.outputs,
          attempts: j.startedAt === null ? 0 : 1,
          reason: j.reason,
          steps: j.steps.map((s) => ({
            name: s.name,
            outcome: conclusion(s.state),
            conclusion: s.conclusion ?? conclusion(s.state),
            exitCode: s.exitCode,
          })),
        },
      ]),
    ),
  }
}
