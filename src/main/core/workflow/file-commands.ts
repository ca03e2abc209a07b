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

/**
 * A shell script that prints every file of a step's command folder, each after a separator
 * made from the step's `nonce` (fresh random text per step): what a step writes into one file
 * (its summary, say) cannot pass for the start of another ($GITHUB_ENV) unless it knew the nonce.
 */
export function collectScript(dir: string, nonce: string): string {
  // (`true`: a missing file is empty, not a failure.)
  return (
    FILE_COMMANDS.map((f) => `printf '\\n${separator(nonce, f)}\\n'; cat "${dir}/${f}" 2>/dev/null`).join(
      '; ',
    ) + '; true'
  )
}

function separator(nonce: string, file: FileCommand): string {
  if (!/^[A-Za-z0-9]+$/.test(nonce)) throw new Error('the nonce must be letters and digits')
  return `@@ym-${nonce}:${file}@@`
}

/**
 * Why GitHub refuses to let $GITHUB_ENV set this variable, or null when it may: NODE_OPTIONS
 * (refused since runner 2.309 with this message), in any case.
 */
export function refusedEnvName(name: string): string | null {
  return name.toUpperCase() === 'NODE_OPTIONS'
    ? "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command."
    : null
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

/** Splits what collectScript printed back into its files (the same nonce). */
export function splitCollected(text: string, nonce: string): Record<FileCommand, string> {
  const out = Object.fromEntries(FILE_COMMANDS.map((f) => [f, ''])) as Record<FileCommand, string>
  // Each separator is looked for once, in order, after the one before: a file's content is
  // whatever lies between its separator and the next one.
  let at = 0
  const starts = FILE_COMMANDS.map((f) => {
    const mark = `\n${separator(nonce, f)}\n`
    const i = text.indexOf(mark, at)
    if (i < 0) return null
    at = i + mark.length
    return { file: f, from: at, markAt: i }
  })
  starts.forEach((s, k) => {
    if (!s) return
    const next = starts.slice(k + 1).find((n) => n !== null)
    out[s.file] = text.slice(s.from, next ? next.markAt : text.length)
  })
  return out
}
