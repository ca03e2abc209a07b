/**
 * Pure rules of the Nodes view: how an event changes the list, which admin actions are legal,
 * what an edit sends. No React, no API: tested on their own.
 */
import type { AdminKind, HealthSample, NodeEdit, NodeLiveView, SeriesPoint } from '../../../shared/model'

/** A `node.changed` payload replaces the node of that name; a node we did not know is appended. */
export function replaceNode(nodes: NodeLiveView[], changed: NodeLiveView): NodeLiveView[] {
  const i = nodes.findIndex((n) => n.name === changed.name)
  if (i < 0) return [...nodes, changed]
  const out = nodes.slice()
  out[i] = changed
  return out
}

/** True when the change is one the history records (so the node's events are worth reloading). */
export function stateMoved(before: NodeLiveView | undefined, after: NodeLiveView): boolean {
  if (!before) return true
  return (
    before.health !== after.health ||
    before.healthSince !== after.healthSince ||
    before.admin !== after.admin ||
    before.adminSince !== after.adminSince
  )
}

export type AdminAction = 'drain' | 'cordon' | 'resume'

export interface ActionRule {
  action: AdminAction
  enabled: boolean
  /** Why it is disabled, in words (for the button's title); null when enabled. */
  why: string | null
}

/** The node state machine's rules (src/main/core/farm/node-state.ts), as buttons. */
export function adminActions(admin: AdminKind): ActionRule[] {
  const rule = (action: AdminAction, refused: string | null): ActionRule => ({
    action,
    enabled: refused === null,
    why: refused,
  })
  return [
    rule('drain', admin === 'draining' ? 'the node is already draining' : null),
    rule('cordon', admin === 'cordoned' ? 'the node is already cordoned' : null),
    rule('resume', admin === 'active' ? 'the node is active: there is nothing to resume' : null),
  ]
}

/** Does a node need someone to look at it: not answering well, or out of service. */
export function needsAttention(n: NodeLiveView): boolean {
  return n.health !== 'online' || n.admin !== 'active'
}

// ---- editing -------------------------------------------------------------------------------

/** Every node has `self-hosted`; the farm file declares the rest. */
export const IMPLICIT_LABEL = 'self-hosted'

export function declaredLabels(node: NodeLiveView): string[] {
  return node.labels.filter((l) => l !== IMPLICIT_LABEL)
}

/** `linux, GPU ,,arm64` → `['linux', 'GPU', 'arm64']` (duplicates and `self-hosted` dropped). */
export function parseLabels(text: string): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const raw of text.split(',')) {
    const l = raw.trim()
    const key = l.toLowerCase()
    if (!l || key === IMPLICIT_LABEL || seen.has(key)) continue
    seen.add(key)
    out.push(l)
  }
  return out
}

/** What the edit form holds, as typed. */
export interface EditDraft {
  labels: string
  slots: string
  defaultImage: string
}

export function draftFrom(node: NodeLiveView): EditDraft {
  return {
    labels: declaredLabels(node).join(', '),
    slots: String(node.slots),
    defaultImage: node.defaultImage ?? '',
  }
}

export interface EditPlan {
  /** Only the fields that differ from the node; empty when nothing changed. */
  edit: NodeEdit
  /** What is wrong with the draft, in words; Save is refused while there are any. */
  problems: string[]
}

/**
 * Compares the draft with the node and keeps only the changed fields. Labels compare as sets,
 * ignoring case (the farm matches them so). An emptied default image removes the key, when
 * the current one is known; when it is not, an empty field means "leave it".
 */
export function planEdit(node: NodeLiveView, draft: EditDraft): EditPlan {
  const edit: NodeEdit = {}
  const problems: string[] = []

  const labels = parseLabels(draft.labels)
  const key = (ls: string[]) => [...new Set(ls.map((l) => l.toLowerCase()))].sort().join('\n')
  if (key(labels) !== key(declaredLabels(node))) edit.labels = labels

  const slotsText = draft.slots.trim()
  const slots = Number(slotsText)
  if (!/^\d+$/.test(slotsText) || !Number.isSafeInteger(slots) || slots < 1) {
    problems.push('slots must be a whole number, 1 or more')
  } else if (slots !== node.slots) {
    edit.slots = slots
  }

  const image = draft.defaultImage.trim()
  if (/\s/.test(image)) problems.push('an image name has no spaces')
  else if (image !== (node.defaultImage ?? '')) edit.defaultImage = image || null
  return { edit: problems.length ? {} : edit, problems }
}

// ---- series --------------------------------------------------------------------------------

export const SERIES_SPAN_MS = 15 * 60_000

/** A sample as a series point, so live samples extend the chart loaded at the start. */
export function pointFromSample(s: HealthSample): SeriesPoint {
  return {
    at: s.at,
    samples: 1,
    reachable: 1,
    load1: s.load1,
    load1Max: s.load1,
    cpuPct: s.cpuPct,
    cpuPctMax: s.cpuPct,
    memUsedPct: s.memUsedPct,
    rootFreeBytes: s.rootFreeBytes,
    dataFreeBytes: s.dataFreeBytes,
    containersOurs: s.containersOurs,
    containersOthers: s.containersOthers,
    engineMs: s.engineMs,
    engineMsMax: s.engineMs,
    rttMs: s.rttMs,
    skewMs: s.skewMs,
  }
}

/** Appends the sample when it is newer than the last point, and drops points older than the span. */
export function extendSeries(points: SeriesPoint[], sample: HealthSample | null, now: number): SeriesPoint[] {
  const last = points[points.length - 1]
  const grown = sample && (!last || sample.at > last.at) ? [...points, pointFromSample(sample)] : points
  const from = now - SERIES_SPAN_MS
  return grown[0] && grown[0].at < from ? grown.filter((p) => p.at >= from) : grown
}
