/** Starts the built `yardmaster serve` as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from './lab'

export interface Served {
  url: string
  origin: string
  token: string
  stop(): Promise<void>
  /** What it printed so far (stdout and stderr). */
  output(): string
  /** Its exit code once it exits. */
  exited: Promise<number | null>
}

/** `env` is added to this process's environment for the child (YARDMASTER_SECRETS_KEY, say). */
export async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const bundle = join(REPO, 'out', 'main', 'cli.js')
  if (!existsSync(bundle) || !existsSync(join(REPO, 'out', 'renderer', 'index.html'))) {
    throw new Error('The app is not built: run `npm run build` (npm test does it for you).')
  }
  const child: ChildProcess = spawn(
    process.execPath,
    [join(REPO, 'bin', 'yardmaster.cjs'), 'serve', '--port', '0', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    },
  )
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not print its URL in 15 s:\n${out}`)), 15_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /Open: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => reject(new Error(`serve exited ${code}:\n${out}`)))
  })
  const u = new URL(url)
  return {
    url,
    origin: u.origin,
    token: u.searchParams.get('token')!,
    output: () => out,
    exited,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
