/** Nodes as `farm.nodes` returns them, for unit tests. */
import type { HealthSample, NodeLiveView } from '../../../shared/model'

export function sample(at: number, over: Partial<HealthSample> = {}): HealthSample {
  return {
    at,
    load1: 0.5,
    cpus: 2,
    cpuPct: 10,
    memUsedPct: 40,
    rootFreeBytes: 20 * 2 ** 30,
    dataFreeBytes: 20 * 2 ** 30,
    containersOurs: 0,
    containersOthers: 1,
    engineMs: 3,
    rttMs: 5,
    skewMs: 2,
    ...over,
  }
}

export function liveNode(name: string, over: Partial<NodeLiveView> = {}): NodeLiveView {
  return {
    name,
    host: `10.0.0.${name.length}`,
    executor: 'docker',
    labels: ['self-hosted', 'linux'],
    slots: 2,
    address: `ci@${name}:22`,
    health: 'online',
    healthSince: 1000,
    healthReasons: [],
    unreachableCause: null,
    admin: 'active',
    adminSince: null,
    adminReason: null,
    description: 'online',
    canTakeNewJobs: true,
    defaultImage: null,
    infraFailures: 0,
    sample: sample(1000),
    source: { file: '/farm.yml', line: 3 },
    ...over,
  }
}
