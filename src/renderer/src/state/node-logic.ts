/**
 * Pure rules of the Nodes view: how an event changes the list, which admin actions are legal,
 * what an edit sends, where an image can be copied from and how a copy or a probe reads. No
 * React, no API: tested on their own.
 */
import type {
  AdminKind,
  EngineFacts,
  HealthSample,
  HostFacts,
  ImageCopyView,
  NodeCapabilities,
  NodeEdit,
  NodeLiveView,
  SeriesPoint,
} from '../../../shared/model'
import { bytes, millis } from '../format'

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

/** The node state machine's rules (src/main/core/farm/health/node-state.ts), as buttons. */
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

// ---- copying images ------------------------------------------------------------------------

/** The source `node.copyImage` takes for this machine's own Docker engine. */
export const LOCAL_SOURCE = 'local'

export interface CopySource {
  /** What `node.copyImage` is sent as `from`. */
  value: string
  label: string
  /** False for a node the monitor does not hear from: it is offered, but may not answer. */
  answering: boolean
}

/**
 * Where an image can be copied to `target` from: the farm's other docker nodes, in farm order
 * (a shell node has no engine), then this machine's engine, unless the target is this machine
 * or a node of the farm is called `local` (the name then means that node).
 */
export function copySources(nodes: NodeLiveView[], target: NodeLiveView): CopySource[] {
  const out: CopySource[] = nodes
    .filter((n) => n.name !== target.name && n.executor === 'docker')
    .map((n) => {
      const answering = n.health === 'online' || n.health === 'degraded'
      return { value: n.name, label: answering ? n.name : `${n.name} (${n.health})`, answering }
    })
  if (target.host !== 'local' && !nodes.some((n) => n.name === LOCAL_SOURCE))
    out.push({ value: LOCAL_SOURCE, label: 'this machine (local)', answering: true })
  return out
}

/** The source chosen if it is still offered; else the first that answers; else the first. */
export function chosenSource(sources: CopySource[], chosen: string | null): string | null {
  if (chosen !== null && sources.some((s) => s.value === chosen)) return chosen
  return (sources.find((s) => s.answering) ?? sources[0])?.value ?? null
}

/** `sha256:0123456789abcdef…` → `0123456789ab`, as `docker images` shows it. */
export function shortImageId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}

export interface CopyWords {
  /** `copied lab/busybox:1 from n1: 1.9 MiB in 420 ms`, `already present (same image id): nothing sent` */
  summary: string
  /** What the target had under that name before, now untagged; null when nothing was replaced. */
  replaced: string | null
}

/** A copy's result in words (the `from` name `local` reads as this machine). */
export function describeCopy(r: ImageCopyView): CopyWords {
  if (r.outcome === 'present')
    return { summary: 'already present (same image id): nothing sent', replaced: null }
  const from = r.from === LOCAL_SOURCE ? 'this machine' : r.from
  return {
    summary: `copied ${r.image} from ${from}: ${bytes(r.bytes)} in ${millis(r.ms)}`,
    replaced: r.replacedImageId
      ? `${r.to} had another image under that name (${shortImageId(r.replacedImageId)}); ` +
        'it is now untagged, and Prune removes it if nothing uses it'
      : null,
  }
}

// ---- capabilities --------------------------------------------------------------------------

export interface LabelGroups {
  /** As the farm file declares them (`self-hosted`, which every node has, is automatic). */
  declared: string[]
  automatic: string[]
  /** The engine's labels, `key=value`. */
  engine: string[]
}

/** The labels `runs-on` is matched against, by where they come from. */
export function labelGroups(c: NodeCapabilities): LabelGroups {
  return {
    declared: c.declared.filter((l) => l !== IMPLICIT_LABEL),
    automatic: c.automatic,
    engine: c.engineLabels,
  }
}

/** `linux / x64`; `—` for what the probe could not tell. */
export function osArch(c: Pick<NodeCapabilities, 'os' | 'arch'>): string {
  return c.os === null && c.arch === null ? '—' : `${c.os ?? '—'} / ${c.arch ?? '—'}`
}

/** `Docker 20.10.24 on Debian GNU/Linux 12 (bookworm) · storage overlay2 · runtimes runc, nvidia` */
export function engineLine(e: EngineFacts): string {
  return [
    `Docker ${e.serverVersion}${e.operatingSystem ? ` on ${e.operatingSystem}` : ''}`,
    `storage ${e.storageDriver}`,
    e.runtimes.length ? `runtimes ${e.runtimes.join(', ')}` : 'no runtimes reported',
  ].join(' · ')
}

/** `Linux x86_64 · tools git, make, node`; `not looked for` when the probe did not look. */
export function hostLine(h: HostFacts): string {
  const tools =
    h.tools === null
      ? 'tools not looked for'
      : h.tools.length
        ? `tools ${h.tools.join(', ')}`
        : 'no tools found'
  return `${[h.kernel, h.machine].filter(Boolean).join(' ') || 'unknown system'} · ${tools}`
}

/** Ends a backend message as a sentence: `refused` → `refused.`; `… (try: ssh x).` stays as it is. */
export function asSentence(text: string): string {
  const t = text.trim()
  return !t || /[.!?]$/.test(t) ? t : `${t}.`
}
