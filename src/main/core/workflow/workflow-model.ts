/** A workflow as Yardmaster understands it after validation. */

export interface WorkflowStep {
  index: number
  id: string | null
  /** Display name: `name:` or, as on GitHub, `Run <first line of the script>`. */
  name: string
  run: string
  env: Record<string, string>
  /** `bash` or `sh`; null means GitHub's default (bash if present, else sh). */
  shell: 'bash' | 'sh' | null
  workingDirectory: string | null
}

export interface WorkflowJob {
  key: string
  name: string
  runsOn: string[]
  needs: string[]
  env: Record<string, string>
  /** `container:` image; null means the node's default image. */
  image: string | null
  steps: WorkflowStep[]
  /** Where the job is defined, for messages that come after parsing (scheduling). */
  line: number
  col: number
}

export interface Workflow {
  file: string
  name: string
  env: Record<string, string>
  /** In file order. */
  jobs: WorkflowJob[]
}
