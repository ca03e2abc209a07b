/** A problem in a file the user wrote, pinned to where it is. */
export interface SourceProblem {
  file: string
  /** 1-based. */
  line: number
  /** 1-based. */
  col: number
  /** Dotted path of the field, e.g. `jobs.build.steps[0].run`; empty for the whole file. */
  path: string
  message: string
}

/** `file:line:col: message` — the form editors and terminals turn into links. */
export function formatProblem(p: SourceProblem): string {
  const where = p.path ? ` (${p.path})` : ''
  return `${p.file}:${p.line}:${p.col}: ${p.message}${where}`
}

/** Thrown when a workflow or farm file is invalid; carries every problem found in one pass. */
export class InvalidSourceError extends Error {
  constructor(
    readonly kind: 'workflow' | 'farm',
    readonly problems: SourceProblem[],
  ) {
    super(
      `${kind === 'workflow' ? 'Workflow' : 'Farm file'} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => '  ' + formatProblem(p)).join('\n'),
    )
    this.name = 'InvalidSourceError'
  }
}
