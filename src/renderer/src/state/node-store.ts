/**
 * The farm as the console shows it. Snapshot (`farm.nodes`, each node's last 15 minutes), then
 * events: `node.changed` replaces one node, `farm.changed` and a reconnect take the snapshot
 * again. No polling. Actions go through here so their results land in the same list.
 */
import { createStore } from 'zustand/vanilla'
import type { ApiClient } from '../../../shared/api'
import type {
  ConnectionTestView,
  ContainerView,
  HostKeyView,
  ImageCopyView,
  ImageView,
  NodeEdit,
  NodeEventRecord,
  NodeLiveView,
  NodeStatusView,
  PruneReport,
  SeriesPoint,
} from '../../../shared/model'
import { extendSeries, replaceNode, SERIES_SPAN_MS, stateMoved, type AdminAction } from './node-logic'

export interface NodeState {
  nodes: NodeLiveView[]
  /** False until the first snapshot answered. */
  loaded: boolean
  /** Last 15 minutes of each node's health, by node name. */
  series: Record<string, SeriesPoint[]>
  selected: string | null
  /** State changes of the selected node, newest first. */
  events: NodeEventRecord[]
  /** Why the events could not be loaded; null when they were. */
  eventsError: string | null
  /** Why the list could not be loaded; null when it was. */
  error: string | null
  start(): () => void
  select(name: string | null): void
  testConnection(name: string): Promise<ConnectionTestView>
  admin(name: string, action: AdminAction, reason: string): Promise<NodeLiveView>
  edit(name: string, edit: NodeEdit): Promise<NodeLiveView>
  /** Reads the farm file again (edited elsewhere); the list follows on `farm.changed`. */
  reloadFarm(): Promise<NodeLiveView[]>
  containers(name: string): Promise<ContainerView[]>
  images(name: string): Promise<ImageView[]>
  prune(name: string): Promise<PruneReport>
  /** Makes sure `image` is on the node, copied from `from` (another node, or `local`). */
  copyImage(name: string, image: string, from: string): Promise<ImageCopyView>
  /** Probes the node now: its facts and capabilities, or why it could not be probed. */
  probe(name: string): Promise<NodeStatusView>
  hostKey(name: string): Promise<HostKeyView>
  trust(name: string, fingerprint: string): Promise<HostKeyView>
}

const EVENTS_SHOWN = 30

export function createNodeStore(
  api: ApiClient,
  onReconnect?: (l: () => void) => () => void,
  now: () => number = Date.now,
) {
  return createStore<NodeState>()((set, get) => {
    const message = (e: unknown) => (e as Error).message

    const loadEvents = async (name: string) => {
      try {
        const events = await api.call('node.events', { node: name, limit: EVENTS_SHOWN })
        if (get().selected === name) set({ events, eventsError: null })
      } catch (e) {
        if (get().selected === name) set({ eventsError: message(e) })
      }
    }
    const loadSeries = async (name: string) => {
      const { points } = await api.call('node.series', { node: name, from: now() - SERIES_SPAN_MS })
      set({ series: { ...get().series, [name]: points } })
    }
    const loadNodes = async () => {
      try {
        const nodes = await api.call('farm.nodes', {})
        set({ nodes, loaded: true, error: null })
        const selected = get().selected
        if (selected === null || !nodes.some((n) => n.name === selected)) get().select(nodes[0]?.name ?? null)
        else void loadEvents(selected)
        // A chart that cannot be loaded is left empty; the node itself is still shown.
        for (const n of nodes) loadSeries(n.name).catch(() => {})
      } catch (e) {
        set({ error: message(e), loaded: true })
      }
    }
    /** A node as the backend now sees it: from an event or an action's answer. */
    const apply = (node: NodeLiveView) => {
      const before = get().nodes.find((n) => n.name === node.name)
      set({
        nodes: replaceNode(get().nodes, node),
        series: {
          ...get().series,
          [node.name]: extendSeries(get().series[node.name] ?? [], node.sample, now()),
        },
      })
      if (node.name === get().selected && stateMoved(before, node)) void loadEvents(node.name)
      return node
    }

    return {
      nodes: [],
      loaded: false,
      series: {},
      selected: null,
      events: [],
      eventsError: null,
      error: null,
      start() {
        void loadNodes()
        const offs = [
          api.on('node.changed', apply),
          api.on('farm.changed', () => void loadNodes()),
          onReconnect?.(() => void loadNodes()) ?? (() => {}),
        ]
        return () => offs.forEach((off) => off())
      },
      select(name) {
        set({ selected: name, events: [], eventsError: null })
        if (name !== null) void loadEvents(name)
      },
      testConnection: (name) => api.call('node.test', { node: name }),
      admin: async (name, action, reason) =>
        apply(
          await api.call('node.admin', {
            node: name,
            action,
            ...(reason.trim() ? { reason: reason.trim() } : {}),
          }),
        ),
      edit: async (name, edit) => apply(await api.call('farm.editNode', { node: name, edit })),
      reloadFarm: async () => {
        const nodes = await api.call('farm.reload', {})
        set({ nodes, error: null })
        return nodes
      },
      containers: (name) => api.call('node.containers', { node: name }),
      images: (name) => api.call('node.images', { node: name }),
      prune: (name) => api.call('node.prune', { node: name }),
      copyImage: (name, image, from) => api.call('node.copyImage', { node: name, image, from }),
      probe: async (name) => {
        const status = (await api.call('farm.probe', { node: name })).find((s) => s.name === name)
        if (!status) throw new Error(`the probe did not answer for ${name}`)
        return status
      },
      hostKey: (name) => api.call('node.hostKey', { node: name }),
      trust: (name, fingerprint) => api.call('node.trust', { node: name, fingerprint }),
    }
  })
}

export type NodeStore = ReturnType<typeof createNodeStore>
