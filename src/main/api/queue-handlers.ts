/**
 * Trigger, cancel, re-run and the queue: the orchestrator's side of the contract. Arguments come
 * from outside and are checked here; the orchestrator refuses what cannot be (an unknown run, a
 * finished one, an invalid workflow) with the reason.
 */
import type { Priority, QueueView, TriggeredView } from '../../shared/model'
import { PRIORITIES } from '../core/scheduler/priority'
import type { QueueEntry } from '../core/store/queue-store'
import type { BackendContext } from './backend'
import {
  InvalidArgumentError,
  optionalString,
  requireInt,
  requireOneOf,
  requireString,
} from './validate-args'

const RERUN_MODES = ['all', 'failed', 'job'] as const

export function queueHandlers({ orchestrator, workflows }: BackendContext) {
  const list = (): QueueView => orchestrator.queue()
  return {
    'runs.trigger': async (args: {
      workflowFile: string
      inputs?: Record<string, string>
      event?: string
      priority?: Priority
      labels?: string[]
    }) => {
      const req = {
        workflowFile: workflowFileOf(args),
        inputs: stringMap(args, 'inputs'),
        event: optionalString(args, 'event', 100),
        priority: args.priority === undefined ? undefined : requireOneOf(args, 'priority', PRIORITIES),
        labels: stringList(args, 'labels'),
      }
      if (!workflows.knows(req.workflowFile))
        throw new InvalidArgumentError(
          `"workflowFile" ${req.workflowFile} is not a workflow the console knows: add its folder under ` +
            'Workflows (workflows.addFolder), or run it once with yardmaster run',
        )
      return triggered(await orchestrator.trigger(req))
    },
    'runs.cancel': (args: { runId: number }) => {
      const runId = requireInt(args, 'runId', 1)
      orchestrator.cancelRun(runId)
      return { runId }
    },
    'jobs.cancel': (args: { runId: number; jobKey: string }) => {
      const runId = requireInt(args, 'runId', 1)
      orchestrator.cancelJob(runId, requireString(args, 'jobKey', 500))
      return { runId }
    },
    'runs.rerun': async (args: { runId: number; mode: 'all' | 'failed' | 'job'; job?: string }) => {
      const runId = requireInt(args, 'runId', 1)
      const mode = requireOneOf(args, 'mode', RERUN_MODES)
      const entry =
        mode === 'job'
          ? await orchestrator.rerun(runId, { kind: 'job', job: requireString(args, 'job', 500) })
          : await orchestrator.rerun(runId, { kind: mode })
      return triggered(entry)
    },
    'queue.list': list,
    'queue.setPriority': (args: { queueId: number; priority: Priority }) => {
      orchestrator.setPriority(requireInt(args, 'queueId', 1), requireOneOf(args, 'priority', PRIORITIES))
      return list()
    },
    'queue.remove': (args: { queueId: number }) => {
      orchestrator.dequeue(requireInt(args, 'queueId', 1))
      return list()
    },
  }
}

/** GitHub's bounds on a dispatch: 25 inputs, a payload of 65,535 characters. */
const MAX_INPUTS = 25
const MAX_INPUT_CHARS = 65_535
const MAX_LABELS = 50

/** Only workflow files: the console never reads other files for a caller (their text would show in errors). */
function workflowFileOf(args: unknown): string {
  const file = requireString(args, 'workflowFile', 4096)
  if (!/\.ya?ml$/i.test(file))
    throw new InvalidArgumentError(
      `"workflowFile" must be a workflow file ending in .yml or .yaml, not "${file}"`,
    )
  return file
}

function triggered(e: QueueEntry): TriggeredView {
  return { queueId: e.id, workflowFile: e.workflowFile, priority: e.priority }
}

/** `inputs`: an object of strings (a form's values), or absent. */
function stringMap(args: unknown, key: string): Record<string, string> | undefined {
  const v = (args as Record<string, unknown>)[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError(`"${key}" must be an object`)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k] = x
    else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x)
    else throw new InvalidArgumentError(`"${key}.${k}" must be a string, a number or a boolean`)
  }
  const n = Object.keys(out).length
  if (n > MAX_INPUTS)
    throw new InvalidArgumentError(`"${key}" has ${n} entries; a run takes at most ${MAX_INPUTS}`)
  const size = JSON.stringify(out).length
  if (size > MAX_INPUT_CHARS)
    throw new InvalidArgumentError(
      `"${key}" is ${size} characters; a run takes at most ${MAX_INPUT_CHARS} (GitHub's limit for a dispatch)`,
    )
  return out
}

function stringList(args: unknown, key: string): string[] | undefined {
  const v = (args as Record<string, unknown>)[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.trim() && x.length <= 200))
    throw new InvalidArgumentError(`"${key}" must be a list of labels`)
  if (v.length > MAX_LABELS)
    throw new InvalidArgumentError(`"${key}" has ${v.length} labels; at most ${MAX_LABELS}`)
  return v as string[]
}
