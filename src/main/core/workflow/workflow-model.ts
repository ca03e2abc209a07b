/**
 * A workflow as Yardmaster runs it, after GitHub's parser checked it. Values that may hold
 * expressions stay tokens, evaluated when their contexts exist (at plan time or run time).
 */
import type { TemplateToken } from './actions-syntax'
import type { Priority, WorkflowInputView } from '../../../shared/model'

export interface WorkflowStep {
  index: number
  /** The user's `id:`, or null. */
  id: string | null
  /** The key of this step in the `steps` context: `id`, or `__<index>` for steps without one. */
  contextKey: string
  /** Static display name: `name:` when it has no expression, else GitHub's `Run <first line>`. */
  name: string
  nameToken: TemplateToken | null
  /** The step condition, normalised by GitHub's parser (`success() && (...)` when it had no status function). */
  if: string
  run: TemplateToken | null
  /** Action reference for `uses:` steps (built-ins only). */
  uses: string | null
  with: TemplateToken | null
  env: TemplateToken | null
  shell: string | null
  workingDirectory: TemplateToken | null
  continueOnError: TemplateToken | null
  timeoutMinutes: TemplateToken | null
  line: number
  col: number
}

export interface WorkflowJob {
  key: string
  /** Static display name (`name:` without expressions, else the key). */
  name: string
  nameToken: TemplateToken | null
  needs: string[]
  if: string
  runsOn: TemplateToken | null
  env: TemplateToken | null
  /** `container:` (an image string or a mapping with `image`). */
  container: TemplateToken | null
  /** `services:` containers beside the job's, by name. */
  services: TemplateToken | null
  strategy: TemplateToken | null
  /** `concurrency:` (a group name, or `group` and `cancel-in-progress`). */
  concurrency: TemplateToken | null
  outputs: TemplateToken | null
  continueOnError: TemplateToken | null
  timeoutMinutes: TemplateToken | null
  defaults: RunDefaults
  steps: WorkflowStep[]
  /** Where the job is defined, for messages that come after parsing (scheduling). */
  line: number
  col: number
}

export interface RunDefaults {
  shell: string | null
  workingDirectory: string | null
}

/** A `workflow_dispatch` / `workflow_call` input, as declared (the console's Run form shows these). */
export type WorkflowInput = WorkflowInputView

export interface Workflow {
  file: string
  name: string
  env: TemplateToken | null
  /** `concurrency:` of the whole run. */
  concurrency: TemplateToken | null
  defaults: RunDefaults
  /** Event names the workflow is triggered by (`on:`). */
  events: string[]
  /** Each event's filters as GitHub reads them: branches, tags, paths, types, schedule crons... */
  triggers: Record<string, unknown>
  /** `workflow_dispatch` (or `workflow_call`) inputs. */
  inputs: WorkflowInput[]
  /** In file order. */
  jobs: WorkflowJob[]
  /**
   * The class its runs are queued in when a trigger does not choose one: the workflow's
   * `env: { YARDMASTER_PRIORITY: high }` (GitHub runs the file unchanged, with one more variable).
   */
  priority: Priority | null
}
