/**
 * The expression contexts of a run (github, inputs, vars, secrets, runner...), built once per
 * run and narrowed per job and step. Secrets live only here and in step environments; they are
 * masked in every log line.
 */
import { arch, platform } from 'node:os'
import type { Json } from '../workflow/expressions'
import type { Workflow, WorkflowInput } from '../workflow/workflow-model'
import type { Priority } from '../scheduler/priority'

export interface RunParameters {
  /** The class the run's jobs are served in. @default 'normal' */
  priority?: Priority
  /** `--input K=V`: workflow_dispatch / workflow_call inputs. */
  inputs?: Record<string, string>
  /** `--secret K=V` / `--secret-env K`. Never stored, always masked. */
  secrets?: Record<string, string>
  /** `--var K=V`: the `vars` context. */
  vars?: Record<string, string>
  /** `--event NAME`, default: workflow_dispatch when the workflow has it, else push. */
  event?: string
  /** `--event-path FILE` contents: the `github.event` payload. */
  eventPayload?: Record<string, Json>
  /**
   * A re-run: jobs whose result (whatever it was, as GitHub keeps it) is taken from an earlier
   * run instead of running them again.
   */
  reuse?: {
    runId: number
    jobs: ReadonlyMap<string, Reused>
    /**
     * Matrix instances (by their row key, `build (linux, 20)`) that succeeded in the earlier run,
     * of jobs that run again for their failed instances only: only the failed ones run.
     */
    legs?: ReadonlyMap<string, Reused>
  }
  /** Nodes that take no new jobs (draining, cordoned, quarantined), with the reason shown. */
  unavailable?: ReadonlyMap<string, string>
}

export type ReusedState = 'succeeded' | 'skipped' | 'failed' | 'cancelled'

export interface Reused {
  state: ReusedState
  outputs: Record<string, string>
  node: string | null
}

export class InvalidInputError extends Error {
  override name = 'InvalidInputError'
}

/** Inputs typed as the workflow declares them, with defaults; refuses unknown and missing required ones. */
export function resolveInputs(
  declared: WorkflowInput[],
  given: Record<string, string>,
): Record<string, Json> {
  const out: Record<string, Json> = {}
  const problems: string[] = []
  for (const name of Object.keys(given)) {
    if (!declared.some((d) => d.name === name)) {
      problems.push(
        `unknown input "${name}"` +
          (declared.length
            ? `; the workflow's inputs are: ${declared.map((d) => d.name).join(', ')}`
            : '; the workflow declares no inputs'),
      )
    }
  }
  for (const d of declared) {
    const raw = given[d.name]
    if (raw === undefined) {
      if (d.required && d.default === null)
        problems.push(`input "${d.name}" is required: pass --input ${d.name}=...`)
      out[d.name] = d.default ?? (d.type === 'boolean' ? false : '')
      continue
    }
    if (d.type === 'boolean') {
      if (raw !== 'true' && raw !== 'false')
        problems.push(`input "${d.name}" is a boolean: use true or false, not "${raw}"`)
      out[d.name] = raw === 'true'
    } else if (d.type === 'number') {
      const n = Number(raw)
      if (raw.trim() === '' || Number.isNaN(n)) problems.push(`input "${d.name}" is a number, not "${raw}"`)
      out[d.name] = n
    } else if (d.type === 'choice') {
      if (!d.options.includes(raw))
        problems.push(`input "${d.name}" must be one of: ${d.options.join(', ')} (not "${raw}")`)
      out[d.name] = raw
    } else out[d.name] = raw
  }
  if (problems.length) throw new InvalidInputError(problems.join('\n'))
  return out
}

export function runnerOs(): string {
  return { linux: 'Linux', darwin: 'macOS', win32: 'Windows' }[platform() as string] ?? platform()
}

export function runnerArch(): string {
  return { x64: 'X64', arm64: 'ARM64', arm: 'ARM', ia32: 'X86' }[arch() as string] ?? arch()
}

/** The `github` context for a run; per-job fields are added by the runner. */
export function githubContext(
  workflow: Workflow,
  runId: number,
  params: RunParameters,
): Record<string, Json> {
  const event = params.event ?? (workflow.events.includes('workflow_dispatch') ? 'workflow_dispatch' : 'push')
  return {
    event_name: event,
    event: params.eventPayload ?? (event === 'workflow_dispatch' ? { inputs: params.inputs ?? {} } : {}),
    run_id: String(runId),
    run_number: String(runId),
    run_attempt: '1',
    workflow: workflow.name,
    workflow_ref: workflow.file,
    repository: '',
    repository_owner: '',
    ref: '',
    ref_name: '',
    sha: '',
    actor: process.env.USER ?? '',
    server_url: '',
    api_url: '',
    action: '',
    job: '',
    workspace: '',
    token: '',
  }
}
