/** Runs the CLI in-process and captures what it prints. */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/main/cli/main'

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
