// A console (`yardmaster serve`) for a benchmark, on its own data dir and farm; resolves once it
// serves (it printed its URL). `yardmaster run --data-dir <dataDir>` then submits to it.
import { spawn } from 'node:child_process'
import { clearTimeout, setTimeout } from 'node:timers'

export async function startConsole(dataDir, farmFile) {
  const served = spawn(
    process.execPath,
    ['bin/yardmaster.cjs', 'serve', '--port', '0', '--data-dir', dataDir, '--farm', farmFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  await new Promise((resolve, reject) => {
    let out = ''
    const t = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30_000)
    served.stdout.on('data', (d) => {
      out += d
      if (out.includes('Open: ')) {
        clearTimeout(t)
        resolve()
      }
    })
    served.stderr.on('data', (d) => (out += d))
  })
  return served
}

/** `yardmaster run <workflow>` submitted to the console on `dataDir`; resolves when it exits, rejecting unless it succeeded. */
export function submitRun(workflow, dataDir) {
  const follower = spawn(process.execPath, ['bin/yardmaster.cjs', 'run', workflow, '--data-dir', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  follower.stderr.on('data', (d) => (err += d))
  return new Promise((resolve, reject) =>
    follower.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`yardmaster run exited ${code}: ${err}`)),
    ),
  )
}
