/**
 * The workflows a console knows: files that were run or triggered before, and the workflow files
 * of folders the user added (kept in the data directory as workflow-folders.json). Each is read
 * and validated when listed, so its problems show beside it.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { WorkflowView } from '../../../shared/model'
import { formatProblem, InvalidSourceError } from '../source/source-error'
import { loadWorkflow } from './parse-workflow'
import { secretsUsed } from './secrets-used'

export const FOLDERS_FILE = 'workflow-folders.json'

export class WorkflowCatalog {
  constructor(
    private readonly dataDir: string,
    /** Files run before, the most recent first. */
    private readonly history: () => string[],
    /** Names of the secrets the farm has stored (upper-case, as GitHub compares them). */
    private readonly storedSecrets: () => string[] = () => [],
  ) {}

  folders(): string[] {
    const file = join(this.dataDir, FOLDERS_FILE)
    if (!existsSync(file)) return []
    try {
      const v = JSON.parse(readFileSync(file, 'utf8')) as unknown
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
    } catch {
      return []
    }
  }

  addFolder(folder: string): void {
    const dir = resolve(folder)
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir} is not a folder`)
    const folders = this.folders()
    if (!folders.includes(dir)) this.save([...folders, dir])
  }

  removeFolder(folder: string): void {
    const dir = resolve(folder)
    const folders = this.folders()
    if (!folders.includes(dir))
      throw new Error(`${dir} is not among the added folders: ${folders.join(', ') || 'none'}`)
    this.save(folders.filter((f) => f !== dir))
  }

  /**
   * Is this (after links) one of the workflows the console knows: in an added folder, or run
   * before? The console reads no other file for a caller: its text would show in parse errors.
   */
  knows(file: string): boolean {
    const real = (f: string): string | null => {
      try {
        return realpathSync(f)
      } catch {
        return null
      }
    }
    const target = real(resolve(file))
    if (target === null) return false
    const known = [...this.folders().flatMap(workflowFilesIn), ...this.history()]
    return known.some((k) => real(k) === target)
  }

  /** Folder workflows first (by folder, then name), then files from history not among them. */
  async list(): Promise<WorkflowView[]> {
    const seen = new Set<string>()
    const entries: Array<{ file: string; source: WorkflowView['source'] }> = []
    for (const folder of this.folders())
      for (const file of workflowFilesIn(folder))
        if (!seen.has(file)) {
          seen.add(file)
          entries.push({ file, source: 'folder' })
        }
    for (const file of this.history())
      if (!seen.has(file)) {
        seen.add(file)
        entries.push({ file, source: 'history' })
      }
    const stored = new Set(this.storedSecrets())
    return Promise.all(entries.map(({ file, source }) => describe(file, source, stored)))
  }

  private save(folders: string[]): void {
    writeFileSync(join(this.dataDir, FOLDERS_FILE), JSON.stringify(folders, null, 2) + '\n')
  }
}

/** `*.yml` and `*.yaml` in a folder, and in its `.github/workflows` when it is a repository. */
function workflowFilesIn(folder: string): string[] {
  const out: string[] = []
  for (const dir of [folder, join(folder, '.github', 'workflows')]) {
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir).sort())
      if (/\.ya?ml$/.test(name) && statSync(join(dir, name)).isFile()) out.push(join(dir, name))
  }
  return out
}

async function describe(
  file: string,
  source: WorkflowView['source'],
  stored: Set<string>,
): Promise<WorkflowView> {
  try {
    const wf = await loadWorkflow(file)
    const secrets = secretsUsed(readFileSync(file, 'utf8'))
    return {
      file,
      name: wf.name,
      events: wf.events,
      inputs: wf.inputs.map((i) => ({ ...i })),
      problems: [],
      source,
      secrets,
      missingSecrets: secrets.filter((n) => !stored.has(n.toUpperCase())),
      priority: wf.priority,
    }
  } catch (e) {
    const problems = e instanceof InvalidSourceError ? e.problems.map(formatProblem) : [(e as Error).message]
    return {
      file,
      name: null,
      events: [],
      inputs: [],
      problems,
      source,
      secrets: [],
      missingSecrets: [],
      priority: null,
    }
  }
}
