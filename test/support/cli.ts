/** Runs the CLI in-process and captures what it prints, or as a process of its own. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { main } from '../../src/main/cli/main'

const BIN = resolve(__dirname, '..', '..', 'bin', 'yardmaster.cjs')

export interface CliResult {
  code: number
  out: string
  err: string
}

export async function cli(argv: string[], signal?: AbortSignal): Promise<CliResult> {
  let out = ''
  let err = ''
  const code = await main(
    argv,
    { out: (t) => (out += t), err: (t) => (err += t), color: false },
    signal ?? new AbortController().signal,
  )
  return { code, out, err }
}

export function tempDir(prefix = 'ym-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface CliProcess {
  child: ChildProcess
  /** Its exit code and everything it printed (stdout and stderr, interleaved). */
  done: Promise<{ code: number | null; out: string }>
  /** Resolves when the output contains `text`; rejects after `ms` with the output so far. */
  saw(text: string, ms?: number): Promise<void>
}

/** Starts `yardmaster <argv>` (the built CLI) as a process of its own, as a user in a terminal would. */
export function spawnCli(argv: string[]): CliProcess {
  const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, out })),
  )
  const saw = (text: string, ms = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const t0 = Date.now()
      const tick = setInterval(() => {
        if (out.includes(text)) {
          clearInterval(tick)
          resolve()
        } else if (Date.now() - t0 > ms) {
          clearInterval(tick)
          reject(new Error(`did not see "${text}" in:\n${out}`))
        }
      }, 50)
    })
  return { child, done, saw }
}
