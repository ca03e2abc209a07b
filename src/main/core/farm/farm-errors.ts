/**
 * Errors about reaching nodes. Each says what happened and what to do next; none carries a
 * secret (key contents, passphrases).
 */
import { describeNode, type FarmNode } from './farm-model'

/** Thrown when a node cannot be reached at all (refused, timed out, DNS). */
export class NodeUnreachableError extends Error {
  constructor(
    readonly node: FarmNode,
    readonly reason: string,
  ) {
    super(
      `cannot reach node ${describeNode(node)}: ${reason}. ` +
        `Check that the machine is up and sshd listens there (try: ssh -p ${node.port} ${node.user}@${node.host}).`,
    )
    this.name = 'NodeUnreachableError'
  }
}

/** Thrown when the node presents a host key other than the one known_hosts holds for it. */
export class HostKeyMismatchError extends Error {
  constructor(
    readonly node: FarmNode,
    readonly knownHosts: string,
    readonly line: number,
    readonly fingerprint: string,
  ) {
    const pattern = node.port === 22 ? node.host : `[${node.host}]:${node.port}`
    super(
      `host key of node ${describeNode(node)} does not match ${knownHosts}:${line} ` +
        `(the node offered ${fingerprint}). The connection was refused: the machine may have been reinstalled, ` +
        `or someone may be intercepting the connection. If the change is expected, remove the old key with ` +
        `\`ssh-keygen -R '${pattern}' -f ${knownHosts}\` and add the new one.`,
    )
    this.name = 'HostKeyMismatchError'
  }
}

/** Thrown when known_hosts has no key for the node: we never connect blindly. */
export class UnknownHostKeyError extends Error {
  constructor(
    readonly node: FarmNode,
    readonly knownHosts: string,
    readonly fingerprint: string,
  ) {
    const port = node.port === 22 ? '' : `-p ${node.port} `
    super(
      `node ${describeNode(node)} is not in ${knownHosts} (it offered ${fingerprint}). ` +
        `Verify that fingerprint with the machine's owner, then add it: ` +
        `\`ssh-keyscan ${port}${node.host} >> ${knownHosts}\`.`,
    )
    this.name = 'UnknownHostKeyError'
  }
}

/** Thrown when the node refuses our credentials. */
export class AuthenticationError extends Error {
  constructor(
    readonly node: FarmNode,
    detail: string,
  ) {
    super(
      `authentication to node ${describeNode(node)} failed: ${detail}. ` +
        (node.identityFile
          ? `Check that the public key of ${node.identityFile} is in ~${node.user}/.ssh/authorized_keys on the node.`
          : `No identityFile is set, so the ssh-agent was asked; add a key to the agent or set identityFile in the farm file.`),
    )
    this.name = 'AuthenticationError'
  }
}

/** Thrown when SSH works but the node's Docker engine does not answer. */
export class EngineUnavailableError extends Error {
  constructor(
    readonly node: FarmNode,
    detail: string,
  ) {
    super(
      `the Docker engine on node ${describeNode(node)} did not answer: ${detail}. ` +
        `Check that dockerd runs there and that ${node.user || 'the user'} may use it (docker info), ` +
        `or set "executor: shell" for this node.`,
    )
    this.name = 'EngineUnavailableError'
  }
}
