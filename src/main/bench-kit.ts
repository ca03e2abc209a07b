/**
 * What benchmarks (bench/*.mjs) take from the built app, so they time the shipped code rather
 * than a copy of it. Built to out/main/bench-kit.js (CommonJS, like the CLI bundle).
 */
export { dockerOverSsh } from './core/transport/docker-over-ssh'
export { loadFarmFile } from './core/farm/farm-file'
export { KnownHosts } from './core/transport/known-hosts'
export { connectSsh } from './core/transport/ssh-connection'
export { parseWorkflow } from './core/workflow/parse-workflow'
export { planWorkflow, criticalPath } from './core/workflow/plan'
export { levels, findCycle } from './core/workflow/job-graph'
export { schedule } from './core/scheduler/schedule'
export { requirementsOf } from './core/scheduler/capability-match'
export { forecastDuration, meanAbsolutePercentageError } from './core/forecast/duration'
export { Orchestrator } from './core/orchestrator/orchestrator'
export { openDatabase } from './core/store/database'
export { runHandlers } from './api/run-handlers'
export { queueHandlers } from './api/queue-handlers'
export { LogSink } from './core/executor/log-sink'
export { RunStore } from './core/store/run-store'
export { WorkflowCommands } from './core/workflow/workflow-commands'
