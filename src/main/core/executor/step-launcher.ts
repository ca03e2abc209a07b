/**
 * How a step reaches its node without its script or its environment on a command line, where any
 * user of the node reads them with `ps` (and, for `docker exec`, in `docker inspect`): the script
 * becomes a file, as GitHub's runner writes it before running `bash -e {0}` on it, and a small
 * launcher beside it sets the working directory and PATH, runs the prelude, the step and the
 * epilogue. Both live in a folder of their own (mode 0700, files 0600) under the job's temp folder,
 * removed when the step ends; command lines carry only the launcher's path. Pure: the executors
 * deliver the files (in the `docker exec`'s own environment, or the channel's standard input on
 * shell nodes), and the step's shell writes them.
 */
import { randomBytes } from 'node:crypto'
import { JobSetupError } from './job-failures'
import { shellQuote, type StepCommand } from './job-environment'

export interface StepFiles {
  /** The step's private folder on the node. */
  dir: string
  /** The script's path on the node (dir/script with the extension its shell expects). */
  scriptPath: string
  /** The step's script, as given. */
  script: string
  /** The launcher's path on the node (dir/launch.sh). */
  launcherPath: string
  /** `sh launcher` runs the step. */
  launcher: string
  /** StepCommand.record and .checkpoint, for the delivery to make and write. */
  record?: string
  checkpoint?: string
}

export interface LaunchOptions {
  /** The folder the step's private folder is made in (the job's temp folder). */
  parent: string
  /** The job's workspace: the step's working directory, or what a relative one is under. */
  workspace: string
  /**
   * Variables the launcher exports before the step (shell nodes, which cannot be handed an
   * environment otherwise); null when the process already has them (`docker exec` Env).
   */
  exports: Record<string, string> | null
  /** Random folder name (tests). @default 16 random hex digits */
  nonce?: string
}

/** A POSIX shell variable name: what `export` takes. */
export const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** Names bash holds read-only: exporting one is fatal where `sh` is bash (macOS shell nodes). */
const READ_ONLY = new Set(['BASHOPTS', 'BASH_VERSINFO', 'EUID', 'PPID', 'SHELLOPTS', 'UID'])
const exportable = (name: string) => SHELL_NAME.test(name) && !READ_ONLY.has(name)

export function stepFiles(cmd: StepCommand, opts: LaunchOptions): StepFiles {
  const bytes = Buffer.byteLength(cmd.script)
  if (bytes > MAX_STEP_TEXT) throw new StepTooLargeError(bytes)
  const dir = `${opts.parent}/_steps/${opts.nonce ?? randomBytes(8).toString('hex')}`
  const scriptPath = `${dir}/script${extensionFor(cmd.shell)}`
  const launcherPath = `${dir}/launch.sh`
  const lines = [
    '# Yardmaster step launcher: run with sh; removes its folder (and the script) when it ends.',
    // The folder holds the script (and, on shell nodes, the exported secrets): gone when the
    // launcher ends, also when it is told to stop (a SIGKILL leaves it to the job's cleanup).
    `trap 'rm -rf ${shellQuote(dir)}' EXIT`,
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    // Started as its process group's leader (a new SSH session, a detached local process): a
    // cancel signals the whole group the step made, through this number (stopGroup).
    `echo $$ > ${shellQuote(`${dir}/pid`)}`,
  ]
  lines.push(...(cmd.record ? recordLines(cmd.record) : ['ym_end() { exit "$1"; }']))
  for (const [name, value] of Object.entries(opts.exports ?? {}))
    if (exportable(name)) lines.push(`export ${name}=${shellQuote(value)}`)
  if (cmd.prelude) lines.push(`{ ${cmd.prelude}; } || ym_end 127`)
  // PATH of the environment is only known inside it: prepend there.
  if (cmd.pathPrepend?.length)
    lines.push(`PATH=${cmd.pathPrepend.map(shellQuote).join(':')}:"$PATH"; export PATH`)
  const wd = cmd.workingDirectory
  const cwd = !wd ? opts.workspace : wd.startsWith('/') ? wd : `${opts.workspace}/${wd}`
  lines.push(`cd ${shellQuote(cwd)} || ym_end 1`)
  lines.push(`${runLine(cmd.shell, scriptPath)} </dev/null`, 'rc=$?')
  if (cmd.epilogue) lines.push(`{ ${cmd.epilogue}; }`)
  lines.push('ym_end $rc', '')
  return {
    dir,
    scriptPath,
    script: cmd.script,
    launcherPath,
    launcher: lines.join('\n'),
    ...(cmd.record ? { record: cmd.record, checkpoint: cmd.checkpoint } : {}),
  }
}

/**
 * How long a step's end waits for its output to reach the record when a process it left in the
 * background holds it open: what docker waits for an exec's output after its process exits.
 */
export const RECORD_DRAIN_SECONDS = 2

/**
 * The launcher's lines that keep the step's record (StepCommand.record): the launcher's own output
 * goes through a pipe per stream to a `tee`, which appends it to the record and passes it on to
 * the orchestrator, so what the step prints is kept on the node even when nobody reads it any
 * more. `ym_end` ends the step: it closes the pipes and waits for the tees to write the last
 * bytes, then writes the exit code, atomically, last, so a reader that finds `rc` finds all of
 * the output before it. The wait is bounded: a process the step left in the background (a server
 * for the next steps) may hold a pipe open; its tee is left running, so the process lives on.
 */
function recordLines(record: string): string[] {
  const r = shellQuote(record)
  return [
    `ym_r=${r}`,
    `(umask 077 && mkdir -p "$ym_r") && echo $$ > "$ym_r/pid" && rm -f "$ym_r/out.pipe" "$ym_r/err.pipe" && ` +
      `mkfifo "$ym_r/out.pipe" "$ym_r/err.pipe" || exit 127`,
    // Signals ignored in the tees alone (the step keeps the defaults): when the orchestrator's end
    // of the output closes (SIGPIPE), a tee goes on writing the record instead of dying with the
    // step's output; on a cancel (SIGTERM to every process) it stays, so the step's last words
    // during its grace period are kept, and it ends when the step's output does.
    `(trap '' PIPE TERM INT HUP; exec tee -a "$ym_r/out" < "$ym_r/out.pipe") & ym_to=$!`,
    `(trap '' PIPE TERM INT HUP; exec tee -a "$ym_r/err" < "$ym_r/err.pipe" >&2) & ym_te=$!`,
    `exec > "$ym_r/out.pipe" 2> "$ym_r/err.pipe"`,
    'ym_end() {',
    '  exec >/dev/null 2>&1',
    // A trapped signal ends `wait`: the timer's USR1 bounds it.
    `  trap : USR1; (sleep ${RECORD_DRAIN_SECONDS} && kill -USR1 $$) & ym_k=$!`,
    '  wait $ym_to $ym_te; kill $ym_k',
    '  echo "$1" > "$ym_r/rc.part" && mv "$ym_r/rc.part" "$ym_r/rc"',
    '  exit "$1"',
    '}',
  ]
}

/**
 * Names a shell node cannot be given: the launcher exports only shell variable names (GitHub
 * allows others, such as `my-var`, which only a process's environment can carry), and not those
 * bash keeps read-only (`UID`).
 */
export function unexportable(env: Record<string, string>): string[] {
  return Object.keys(env).filter((k) => !exportable(k))
}

/**
 * Makes the step's private folder: mode 0700 (its umask only for this, in a subshell: the step
 * keeps the node's own umask, as on GitHub, so what it creates is not private by surprise).
 */
const privateFolder = (dirs: string[], then: string) =>
  `(umask 077 && mkdir -p ${dirs.map(shellQuote).join(' ')} && ${then})`

/**
 * For shell nodes: what goes to the channel's standard input, and the command line that reads
 * it. The input writes the script with a quoted here-document whose delimiter is random (and
 * checked against the script), then runs the launcher; the command line holds only paths.
 */
export function shellDelivery(files: StepFiles): { command: string; input: string } {
  let delimiter: string
  do delimiter = `YARDMASTER_SCRIPT_${randomBytes(12).toString('hex')}`
  while (files.script.split('\n').includes(delimiter))
  const script = files.script.endsWith('\n') ? files.script : `${files.script}\n`
  // A script that could not be written in full (a full disk) must not run in part.
  const written = `{ echo "yardmaster: could not write the step's script on the node" >&2; exit 1; }`
  const input =
    `cat > ${shellQuote(files.scriptPath)} <<'${delimiter}' || ${written}\n${script}${delimiter}\n` +
    files.launcher
  const command =
    `${privateFolder([files.dir], `cat > ${shellQuote(files.launcherPath)}`)} && ` +
    `exec sh ${shellQuote(files.launcherPath)} </dev/null`
  return { command, input }
}

/** The script and launcher travel in pieces: Linux limits one variable to 128 KiB (and all to 2 MiB). */
const PIECE = 16 * 1024 // UTF-16 units: at most 48 KiB of UTF-8
/** Above this, a step is refused rather than failing to start with E2BIG. */
export const MAX_STEP_TEXT = 1024 * 1024

/** The job's to fix, not the node's: it never counts towards a quarantine. */
export class StepTooLargeError extends JobSetupError {
  constructor(bytes: number) {
    super(
      `the step's script is ${Math.round(bytes / 1024)} KiB once its expressions are evaluated; a step may hold ` +
        `at most ${MAX_STEP_TEXT / 1024} KiB: put the script in a file of the repository and run that`,
    )
    this.name = 'StepTooLargeError'
  }
}

/**
 * For docker nodes: the `docker exec` that writes the files and runs the launcher. The script
 * and the launcher ride in the exec's environment, which neither `ps` on the host nor
 * `docker inspect` shows (copying them in with the engine's archive endpoint cost 240 ms per
 * step: dockerd unpacks in a process of its own); the shell's builtin printf writes them, with
 * the step user's own umask 077, so they are its own. The command line holds only paths.
 */
export function execDelivery(files: StepFiles): { cmd: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {}
  const write = (name: string, text: string, path: string) => {
    const pieces = splitText(text)
    pieces.forEach((p, i) => (env[`${name}_${i}`] = p))
    return `printf %s ${pieces.map((_, i) => `"$${name}_${i}"`).join(' ')} > ${shellQuote(path)}`
  }
  const script = write('YARDMASTER_SCRIPT', files.script, files.scriptPath)
  const launcher = write('YARDMASTER_LAUNCHER', files.launcher, files.launcherPath)
  const state =
    files.record && files.checkpoint !== undefined
      ? ` && ${write('YARDMASTER_STATE', files.checkpoint, `${files.record}/state.json`)}`
      : ''
  const folders = files.record ? [files.dir, files.record] : [files.dir]
  const command =
    `${privateFolder(folders, `${script} && ${launcher}${state}`)} && ` +
    `unset ${Object.keys(env).join(' ')} && exec sh ${shellQuote(files.launcherPath)} </dev/null`
  return { cmd: ['sh', '-c', command], env }
}

/** Pieces of at most PIECE units, never cutting a surrogate pair; at least one (maybe empty). */
function splitText(text: string): string[] {
  const out: string[] = []
  let at = 0
  do {
    let end = Math.min(text.length, at + PIECE)
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
    out.push(text.slice(at, end))
    at = end
  } while (at < text.length)
  return out
}

/**
 * The line that runs the script file with the shell GitHub would pick: `shell: bash` is
 * `bash --noprofile --norc -eo pipefail {0}`, `shell: sh` is `sh -e {0}`, `python` runs the
 * file, a custom shell gets the path for `{0}`; no shell means bash -e where bash exists, else
 * sh -e (chosen inside the environment, which saves a round trip).
 */
function runLine(shell: StepCommand['shell'], path: string): string {
  const file = shellQuote(path)
  if (shell === 'bash') return `bash --noprofile --norc -eo pipefail ${file}`
  if (shell === 'sh') return `sh -e ${file}`
  if (shell === 'python') return `python3 ${file}`
  if (shell?.includes('{0}')) return shell.replaceAll('{0}', file)
  return `if command -v bash >/dev/null 2>&1; then bash --noprofile --norc -e ${file}; else sh -e ${file}; fi`
}

/** The script file's extension, as GitHub names it for each shell (python and pwsh care). */
function extensionFor(shell: StepCommand['shell']): string {
  const program = (shell ?? 'bash').trim().split(/\s+/)[0]!.split('/').pop()!
  if (program === 'python' || program.startsWith('python3')) return '.py'
  if (program === 'pwsh' || program === 'powershell') return '.ps1'
  if (program === 'cmd') return '.cmd'
  return '.sh'
}

/**
 * The command that sends `signal` to a running step's process group (shell nodes), by the number
 * its launcher wrote, and prints that number: the launcher's folder goes when it exits on SIGTERM
 * while what it started may live on, so the SIGKILL after the grace period uses the number
 * printed (killGroup). A step stopped as it starts may not have written it yet: wait for it a
 * little (up to about 5 s); nothing is signalled once the step has ended.
 */
export function stopGroup(files: Pick<StepFiles, 'dir'>, signal: 'TERM' | 'KILL'): string {
  const pid = shellQuote(`${files.dir}/pid`)
  return (
    `i=0; while [ ! -s ${pid} ] && [ $i -lt 50 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done; ` +
    `p=$(cat ${pid} 2>/dev/null) && [ -n "$p" ] && kill -${signal} -"$p" 2>/dev/null; echo "$p"; exit 0`
  )
}

/** SIGKILL to a process group by its number (as stopGroup printed it). */
export function killGroup(pgid: number): string {
  return `kill -KILL -${pgid} 2>/dev/null; exit 0`
}

/**
 * The command that follows a step's record (StepCommand.record) for the orchestrator that takes
 * the job over: prints the step's output from the start (stdout and stderr to their own streams)
 * and what it adds, a pass every 0.2 s, until the step ends; exits with its exit code, or 137 when
 * its launcher is gone without one (killed). A pass that began after `rc` appeared read all of
 * the output (the launcher writes `rc` last), so that pass is the last.
 */
export function followRecord(record: string): string {
  const r = shellQuote(record)
  const pass = (file: string, at: string, to: string) =>
    `n=$(wc -c < ${r}/${file} 2>/dev/null || echo 0); ` +
    `if [ "$n" -gt "$${at}" ]; then tail -c +$(($${at} + 1)) ${r}/${file} | head -c $((n - $${at}))${to}; ${at}=$n; fi; `
  return (
    `p=$(cat ${r}/pid); o=0; e=0; while :; do ` +
    `if [ -e ${r}/rc ]; then f=1; elif kill -0 "$p" 2>/dev/null; then f=0; else f=2; fi; ` +
    pass('out', 'o', '') +
    pass('err', 'e', ' >&2') +
    `if [ $f = 1 ]; then exit "$(cat ${r}/rc)"; fi; ` +
    `if [ $f = 2 ] && [ ! -e ${r}/rc ]; then exit 137; fi; ` +
    `[ $f = 2 ] || sleep 0.2 2>/dev/null || sleep 1; done`
  )
}
