/**
 * Workflow commands in a step's output (`::add-mask::`, `::group::`, `::error file=..::`,
 * `::stop-commands::`...), and masking of secrets and masked values. One instance per job:
 * masks added by a step hold for the rest of the job.
 */

export interface Annotation {
  level: 'error' | 'warning' | 'notice'
  message: string
  file?: string
  line?: number
  col?: number
  title?: string
}

export class WorkflowCommands {
  private readonly masks: string[] = []
  private stopToken: string | null = null
  readonly annotations: Annotation[] = []
  /** Values steps masked with ::add-mask:: (not the secrets it was made with), in order. */
  readonly added: string[] = []

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.addMask(s)
  }

  addMask(value: string): void {
    // Each line of a multi-line secret is masked on its own, as lines are shown one by one; and,
    // as GitHub's masker does, the forms a value takes when a step or a message encodes it.
    for (const part of value.split('\n')) {
      const v = part.trim()
      if (v.length < 1) continue
      for (const form of [v, ...encodedForms(v)])
        if (form.length >= 1 && !this.masks.includes(form)) this.masks.push(form)
    }
    this.masks.sort((a, b) => b.length - a.length)
  }

  /**
   * Where to cut a line too long to keep whole at or before `at`, so that no masked value is cut
   * in two (each half would escape the mask). `text` must reach past `at` by the longest mask.
   */
  safeCut(text: string, at: number): number {
    let cut = at
    for (let moved = true; moved;) {
      moved = false
      for (const m of this.masks) {
        const i = text.indexOf(m, Math.max(0, cut - m.length + 1))
        if (i >= 0 && i < cut && i + m.length > cut) {
          cut = i
          moved = true
        }
      }
    }
    return cut > 0 ? cut : at
  }

  /** The longest text masked (secrets, their encoded forms, added masks). */
  get longestMask(): number {
    return this.masks[0]?.length ?? 0
  }

  mask(text: string): string {
    let out = text
    // includes() first: most lines hold no secret, and it costs a fraction of split/join.
    for (const m of this.masks) if (out.includes(m)) out = out.split(m).join('***')
    return out
  }

  /** A line of output: what to show (masked), or null to hide it (a command line). */
  process(raw: string): string | null {
    const line = raw.trimStart()
    if (this.stopToken !== null) {
      if (line === `::${this.stopToken}::`) {
        this.stopToken = null
        return null
      }
      return this.mask(raw)
    }
    const m = /^::([a-z-]+)(?: ([^:]*))?::(.*)$/.exec(line)
    if (!m) return this.mask(raw)
    const [, command, props = '', value = ''] = m
    switch (command) {
      case 'add-mask':
        this.added.push(value)
        this.addMask(value)
        return null
      case 'stop-commands':
        this.stopToken = value
        return null
      case 'group':
        return this.mask(`▸ ${value}`)
      case 'endgroup':
        return null
      case 'debug':
        return this.mask(`debug: ${value}`)
      case 'error':
      case 'warning':
      case 'notice': {
        const p = parseProps(props)
        const a: Annotation = {
          level: command,
          message: this.mask(unescape(value)),
          ...p,
          ...(p.file ? { file: this.mask(p.file) } : {}),
          ...(p.title ? { title: this.mask(p.title) } : {}),
        }
        this.annotations.push(a)
        const where = a.file ? ` (${a.file}${a.line ? `:${a.line}` : ''}${a.col ? `:${a.col}` : ''})` : ''
        return `${command[0]!.toUpperCase()}${command.slice(1)}: ${a.title ? `${a.title}: ` : ''}${a.message}${where}`
      }
      default:
        return this.mask(raw)
    }
  }
}

/** How a value shows when it is JSON-escaped, URI-escaped, base64'd, or quoted in an expression. */
function encodedForms(v: string): string[] {
  const base64 = Buffer.from(v).toString('base64').replace(/=+$/, '')
  return [JSON.stringify(v).slice(1, -1), encodeURIComponent(v), base64, v.replaceAll("'", "''")].filter(
    (f) => f !== v,
  )
}

function parseProps(props: string): Omit<Annotation, 'level' | 'message'> {
  const out: Omit<Annotation, 'level' | 'message'> = {}
  for (const pair of props.split(',')) {
    const eq = pair.indexOf('=')
    if (eq < 0) continue
    const key = pair.slice(0, eq).trim()
    const value = unescape(pair.slice(eq + 1).trim())
    if (key === 'file' || key === 'title') out[key] = value
    else if (key === 'line' || key === 'col') out[key] = Number(value)
  }
  return out
}

/** GitHub's escaping of command data: %25 %0D %0A %3A %2C. */
function unescape(s: string): string {
  return s
    .replace(/%0D/g, '\r')
    .replace(/%0A/g, '\n')
    .replace(/%3A/g, ':')
    .replace(/%2C/g, ',')
    .replace(/%25/g, '%')
}
