/** The farm: the machines jobs can run on, as declared in a farm file or the embedded default. */

export type ExecutorKind = 'docker' | 'shell'

export interface FarmNode {
  name: string
  /** Host name or address; `local` means this machine, reached without SSH. */
  host: string
  port: number
  user: string
  /** Private key for SSH; null means ask the ssh-agent ($SSH_AUTH_SOCK). */
  identityFile: string | null
  executor: ExecutorKind
  /** Declared labels plus `self-hosted`, lower-cased (matching is case-insensitive, as on GitHub). */
  labels: string[]
  /** How many jobs may run on the node at once. */
  slots: number
  /** Image for jobs without `container:` (docker nodes). */
  defaultImage: string | null
  /** Declared capacity, for fitting jobs that ask for `--cpus`/`--memory`; unknown when absent. */
  cpus?: number | null
  memoryBytes?: number | null
  /**
   * Another node of the farm whose SSH connection carries this node's (ProxyJump): the SSH
   * connection is a TCP channel opened by that node. Null or absent: reached directly.
   */
  jump?: string | null
  /**
   * The node's own `health:` in the farm file, over the farm's (`Farm.health`); absent when it
   * declares none. The monitor judges the node with `thresholdsFor` (health-probe.ts).
   */
  health?: HealthLimits
  /**
   * Host paths jobs may bind-mount from this node (`container.volumes`, services' volumes),
   * exactly these (not what lies under them). Absent or empty: none; named volumes are always allowed.
   */
  allowedHostPaths?: string[]
  /** Where the node is declared, for messages. */
  source: { file: string; line: number; col: number } | null
}

export interface Farm {
  /** A hotfix may stop a running `low` job, which is requeued and recorded as preempted. @default false */
  preemption?: boolean
  /** How long a cancelled (or timed-out) step has between SIGTERM and SIGKILL. @default 10 */
  cancelGraceSeconds?: number
  /** Most bytes of output kept per job attempt; past it, output is dropped and the log says so. @default no cap */
  logCapPerJob?: number
  /** Null for the embedded default. */
  file: string | null
  /** OpenSSH known_hosts file used to verify host keys. */
  knownHosts: string
  nodes: FarmNode[]
  /**
   * Runner labels such as `ubuntu-latest` mapped to an image and to the node labels that can
   * serve it, as users of local runners expect (`platforms:` in the farm file, `--platform`).
   */
  platforms: Record<string, Platform>
  /**
   * SHA-256 (hex) of the file's bytes as `loadFarmFile` read them, so a write-back can tell that
   * the file changed on disk since. Absent for the embedded default and for farms parsed from text.
   */
  digest?: string | null
  /** The farm-wide `health:` of the farm file; absent when it declares none. */
  health?: HealthLimits
}

/**
 * When a node that answers counts as `degraded` (`health:` in the farm file, farm-wide and per
 * node). A limit left out takes the farm's, then the built-in default (`DEFAULT_THRESHOLDS` in
 * health-probe.ts, given with each field). In the file, `diskFreeBytes` is written `diskFree`,
 * a size such as `5g`.
 */
export interface HealthLimits {
  /** 1-minute load average per core above which the node is loaded. Default 2. */
  loadPerCore?: number
  /** Memory used, in percent, above which memory is low. Default 95. */
  memoryUsedPct?: number
  /** Free bytes on `/` or on the engine's data root below which disk is low. Default 2 GiB. */
  diskFreeBytes?: number
  /** Engine ping slower than this, in milliseconds. Default 2000. */
  engineSlowMs?: number
  /** Clock difference beyond this (either way), in milliseconds. Default 30000. */
  clockSkewMs?: number
}

export interface Platform {
  image: string
  /** Labels a docker node needs to serve this platform (may be empty: any docker node). */
  labels: string[]
}

export const LOCAL_HOST = 'local'

export function isLocal(node: FarmNode): boolean {
  return node.host === LOCAL_HOST
}

export function describeNode(node: FarmNode): string {
  return isLocal(node)
    ? `${node.name} (this machine)`
    : `${node.name} (${node.user}@${node.host}:${node.port}${node.jump ? ` via ${node.jump}` : ''})`
}

/**
 * The nodes whose connections carry `node`'s, nearest first (`[n1]` for n2 behind n1; `[n1, n0]`
 * for a chain). The farm file refuses unknown names and cycles; this still stops on a cycle.
 */
export function jumpChain(farm: Pick<Farm, 'nodes'>, node: FarmNode): FarmNode[] {
  const chain: FarmNode[] = []
  let next = node.jump
  while (next) {
    const hop = farm.nodes.find((n) => n.name === next)
    if (!hop || hop === node || chain.includes(hop)) break
    chain.push(hop)
    next = hop.jump
  }
  return chain
}
