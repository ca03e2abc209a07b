/**
 * The farm and its nodes: live state, probes, health history, node operations, host keys, edits
 * of the farm file. Arguments come from outside and are checked here; a node name that is not in
 * the farm is refused by the service (UnknownNodeError names the farm's nodes).
 */
import type { NodeEdit } from '../../shared/model'
import type { BackendContext } from './backend'
import {
  InvalidArgumentError,
  optionalInt,
  optionalString,
  requireInt,
  requireObject,
  requireOneOf,
  requireString,
} from './validate-args'

const ADMIN_ACTIONS = ['drain', 'cordon', 'resume'] as const
const EDIT_FIELDS = ['labels', 'slots', 'defaultImage'] as const

export function farmHandlers({ farmService: farm }: BackendContext) {
  const node = (args: unknown) => requireString(args, 'node', 200)
  return {
    'farm.nodes': () => farm.nodes(),
    'farm.probe': (args: { node?: string }) => farm.probe(optionalString(args, 'node', 200)),
    'farm.editNode': (args: { node: string; edit: NodeEdit }) => farm.editNode(node(args), nodeEdit(args)),
    'farm.reload': () => farm.reload(),
    'node.series': (args: { node: string; from: number }) =>
      farm.series(node(args), requireInt(args, 'from', 0)),
    'node.events': (args: { node?: string; limit?: number }) =>
      farm.events(optionalString(args, 'node', 200) ?? null, optionalInt(args, 'limit', 1, 1000) ?? 100),
    'node.test': (args: { node: string }) => farm.test(node(args)),
    'node.admin': (args: { node: string; action: 'drain' | 'cordon' | 'resume'; reason?: string }) => {
      const name = node(args)
      const action = requireOneOf(args, 'action', ADMIN_ACTIONS)
      const reason = optionalString(args, 'reason', 500)?.trim() || null
      if (action === 'resume' && reason !== null)
        throw new InvalidArgumentError('"reason" is for drain and cordon, not resume')
      return farm.admin(name, action, reason)
    },
    'node.containers': (args: { node: string }) => farm.containers(node(args)),
    'node.images': (args: { node: string }) => farm.images(node(args)),
    'node.prune': (args: { node: string }) => farm.prune(node(args)),
    'node.copyImage': (args: { node: string; image: string; from: string }) =>
      farm.copyImage(node(args), requireString(args, 'image', 500).trim(), requireString(args, 'from', 200)),
    'node.hostKey': (args: { node: string }) => farm.hostKey(node(args)),
    'node.trust': (args: { node: string; fingerprint: string }) =>
      farm.trust(node(args), requireString(args, 'fingerprint', 200).trim()),
  }
}

/** `edit`: only the fields the console may change, each of its type; at least one. */
function nodeEdit(args: unknown): NodeEdit {
  const raw = requireObject(args, 'edit', EDIT_FIELDS)
  const edit: NodeEdit = {}
  if (raw.labels !== undefined) {
    const labels = raw.labels
    if (
      !Array.isArray(labels) ||
      labels.length > 100 ||
      !labels.every((l) => typeof l === 'string' && l.trim() !== '' && l.length <= 100)
    )
      throw new InvalidArgumentError(
        '"edit.labels" must be a list of at most 100 labels, each a non-empty string of at most 100 characters',
      )
    edit.labels = (labels as string[]).map((l) => l.trim())
  }
  if (raw.slots !== undefined) {
    const slots = raw.slots
    if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > 1000)
      throw new InvalidArgumentError('"edit.slots" must be a whole number from 1 to 1000')
    edit.slots = slots
  }
  if (raw.defaultImage !== undefined) {
    const image = raw.defaultImage
    if (image !== null && (typeof image !== 'string' || !image.trim() || image.length > 500))
      throw new InvalidArgumentError('"edit.defaultImage" must be an image name, or null to remove it')
    edit.defaultImage = image === null ? null : image.trim()
  }
  if (!Object.keys(edit).length)
    throw new InvalidArgumentError(`"edit" changes nothing; give one of ${EDIT_FIELDS.join(', ')}`)
  return edit
}
