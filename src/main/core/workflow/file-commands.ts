/**
 * The runner's file commands: what a step writes to $GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_PATH,
 * $GITHUB_STEP_SUMMARY and $GITHUB_STATE, read back after the step. Pure parsing.
 */

export const FILE_COMMANDS = ['env', 'output', 'path', 'summary', 'state'] as const
export type FileCommand = (typeof FILE_COMMANDS)[number]

/** Environment variable that names each file, as on GitHub. */
export const FILE_COMMAND_VARS: Record<FileCommand, string> = {
  env: 'GITHUB_ENV',
  output: 'GITHUB_OUTPUT',
  path: 'GITHUB_PATH',
  summary: 'GITHUB_STEP_SUMMARY',
  state: 'GITHUB_STATE',
}

export class FileCommandError extends Error {
  override name = 'FileCommandError'
}

/**
 * `NAME=value` lines and `NAME<<DELIMITER` blocks (multi-line values), as $GITHUB_ENV and
 * $GITHUB_OUTPUT take them. Throws on an unterminated block or a line without a name.
 */
export function parseKeyValueFile(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '')
    if (!line.trim()) continue
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    const eq = line.indexOf('=')
    if (heredoc && (eq < 0 || eq > line.indexOf('<<'))) {
      const [, name, delimiter] = heredoc
      const value: string[] = []
      let closed = false
      for (i++; i < lines.length; i++) {
        const l = lines[i]!.replace(/\r$/, '')
        if (l === delimiter) {
          closed = true
          break
        }
        value.push(l)
      }
      if (!closed)
        throw new FileCommandError(
          `${what}: "${name}<<${delimiter}" is never closed by a line "${delimiter}"`,
        )
      out[name!] = value.join('\n')
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1)
    } else {
      throw new FileCommandError(`${what}: line "${line}" is neither NAME=value nor NAME<<DELIMITER`)
    }
  }
  return out
}

/** A shell script that prints every file of a step's command folder, framed so it can be split. */
export function collectScript(dir: string): string {
  // (`true`: a missing file is empty, not a failure.)
  return (
    FILE_COMMANDS.map((f) => `printf '\\n@@ym:${f}@@\\n'; cat "${dir}/${f}" 2>/dev/null`).join('; ') +
    '; true'
  )
}

/**
 * Separates a step's own output from what its epilogue printed after a random marker (the
 * file-command files), across chunk boundaries. The marker is random per step, so a step's
 * output cannot forge it.
 */
export class EpilogueSplitter {
  private tail = ''
  private epilogue: string | null = null

  constructor(readonly marker: string) {}

  /** Feeds stdout; returns the part that is the step's own output. */
  feed(chunk: string): string {
    if (this.epilogue !== null) {
      this.epilogue += chunk
      return ''
    }
    const text = this.tail + chunk
    const at = text.indexOf(this.marker)
    if (at >= 0) {
      this.epilogue = text.slice(at + this.marker.length)
      this.tail = ''
      return text.slice(0, at)
    }
    // Keep back only an ending that could be the start of the marker: live output must not wait.
    let keep = Math.min(text.length, this.marker.length - 1)
    while (keep > 0 && !this.marker.startsWith(text.slice(text.length - keep))) keep--
    this.tail = text.slice(text.length - keep)
    return text.slice(0, text.length - keep)
  }

  /** What is left of the step's output (no marker came), and the epilogue, if it came. */
  end(): { rest: string; epilogue: string | null } {
    const rest = this.tail
    this.tail = ''
    return { rest, epilogue: this.epilogue }
  }
}

/** Splits what collectScript printed back into its files. */
export function splitCollected(text: string): Record<FileCommand, string> {
  const out = Object.fromEntries(FILE_COMMANDS.map((f) => [f, ''])) as Record<FileCommand, string>
  const parts = text.split(/\n@@ym:(env|output|path|summary|state)@@\n/)
  for (let i = 1; i < parts.length; i += 2) out[parts[i] as FileCommand] = parts[i + 1] ?? ''
  return out
}
