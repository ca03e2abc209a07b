/**
 * The whole farm at a glance: every node opened and probed at the same time, so the slowest
 * node sets the pace rather than the sum of them. A node that cannot be opened or probed gets
 * its reason and its declared capabilities; it never fails or delays the others beyond its own
 * connect timeout.
 */
import type { NodeStatusView } from '../../../shared/model'
import { mergeCapabilities } from './capabilities'
import { isLocal, type Farm, type FarmNode } from './farm-model'
import type { NodeHandle } from './node-handle'
import { probeNode, type ProbeOptions } from './node-probe'

/** Opens a node (NodeSessions.open): resolves with its handle or rejects with a farm error. */
export type OpenNode = (node: FarmNode) => Promise<NodeHandle>

export async function probeFarm(
  farm: Farm,
  open: OpenNode,
  opts: ProbeOptions = {},
): Promise<NodeStatusView[]> {
  return Promise.all(farm.nodes.map((node) => probeOne(node, open, opts)))
}

async function probeOne(node: FarmNode, open: OpenNode, opts: ProbeOptions): Promise<NodeStatusView> {
  const base = {
    name: node.name,
    host: node.host,
    address: isLocal(node) ? 'this machine' : `${node.user}@${node.host}:${node.port}`,
    executor: node.executor,
    labels: node.labels,
    slots: node.slots,
  }
  try {
    const facts = await probeNode(await open(node), opts)
    return {
      ...base,
      reachable: true,
      unreachableReason: null,
      facts,
      capabilities: mergeCapabilities(node, facts),
    }
  } catch (e) {
    return {
      ...base,
      reachable: false,
      unreachableReason: (e as Error).message,
      facts: null,
      capabilities: mergeCapabilities(node, null),
    }
  }
}
