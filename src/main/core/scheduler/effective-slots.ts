/**
 * A node's slots under pressure (dynamic parallelism). A node whose load per core or memory use
 * passes its health limit (`health.loadPerCore`, `health.memoryUsedPct`: the line past which it
 * counts as degraded) takes fewer new jobs: its slots shrink in proportion to the load, never
 * below one. They grow back only once the pressure falls below 80% of the limit; in between
 * they stay as they were. That band is the hysteresis: nodes sharing a machine's load (the lab)
 * would otherwise flap between full and shrunk every probe. Pure: the dispatcher keeps the
 * previous value and reads the latest sample at every pass, so a change shows within one probe
 * interval (5 s).
 */
import type { HealthSample } from '../../../shared/model'
import type { HealthThresholds } from '../farm/health/health-probe'

/** Pressure must fall below this share of the limit before slots grow back. */
export const GROW_BACK_AT = 0.8

export interface EffectiveSlots {
  slots: number
  /** "n2: 2 of 4 slots while load is 7.9 on 4 cores"; null at full slots. */
  note: string | null
}

export function effectiveSlots(
  node: { name: string; slots: number },
  sample: Pick<HealthSample, 'load1' | 'cpus' | 'memUsedPct'> | null,
  limits: Pick<HealthThresholds, 'loadPerCore' | 'memoryUsedPct'>,
  previous: number | null,
): EffectiveSlots {
  const full = { slots: node.slots, note: null }
  if (!sample) return full
  const perCore = sample.load1 !== null && sample.cpus ? sample.load1 / sample.cpus : null
  const mem = sample.memUsedPct
  const loadHigh = perCore !== null && perCore > limits.loadPerCore
  const memHigh = mem !== null && mem > limits.memoryUsedPct
  let slots: number
  if (loadHigh || memHigh) {
    const byLoad = loadHigh ? Math.floor((node.slots * limits.loadPerCore) / perCore!) : node.slots
    const byMem = memHigh ? node.slots - 1 : node.slots
    slots = Math.max(1, Math.min(byLoad, byMem, previous ?? node.slots))
  } else {
    const calm =
      (perCore === null || perCore < limits.loadPerCore * GROW_BACK_AT) &&
      (mem === null || mem < limits.memoryUsedPct * GROW_BACK_AT)
    slots = calm || previous === null ? node.slots : previous
  }
  if (slots >= node.slots) return full
  const why = [
    perCore !== null && (loadHigh || perCore >= limits.loadPerCore * GROW_BACK_AT)
      ? `load is ${sample.load1!.toFixed(1)} on ${sample.cpus} cores`
      : null,
    mem !== null && (memHigh || mem >= limits.memoryUsedPct * GROW_BACK_AT)
      ? `memory is ${Math.round(mem)}% used`
      : null,
  ].filter(Boolean)
  return { slots, note: `${node.name}: ${slots} of ${node.slots} slots while ${why.join(' and ')}` }
}
