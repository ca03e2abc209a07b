/**
 * Farm nodes and farms for unit tests: an SSH docker node `ci@<name>.lab:22` with one slot and
 * no declared labels beyond `self-hosted`; tests override what they are about.
 */
import type { Farm, FarmNode } from '../../src/main/core/farm/farm-model'

export function farmNode(name: string, over: Partial<FarmNode> = {}): FarmNode {
  return {
    name,
    host: `${name}.lab`,
    port: 22,
    user: 'ci',
    identityFile: null,
    executor: 'docker',
    labels: ['self-hosted'],
    slots: 1,
    defaultImage: null,
    source: null,
    ...over,
  }
}

/** This machine as a node (host `local`, reached without SSH). */
export function localNode(name: string, over: Partial<FarmNode> = {}): FarmNode {
  return farmNode(name, { host: 'local', port: 0, user: '', ...over })
}

export function farmOf(nodes: FarmNode[], over: Partial<Farm> = {}): Farm {
  return { file: null, knownHosts: '/nowhere/known_hosts', nodes, platforms: {}, ...over }
}
