/**
 * Access to the test farm lab (test/lab) from tests. A missing lab is a failure, never a skip:
 * `npm test` brings the lab up first; run `npm run lab:up` when running vitest by hand.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import Docker from 'dockerode'

export interface LabHost {
  name: string
  address: string
  port: number
  dockerSocket: string
  dockerdPidFile: string
  sshdPidFile: string
  hostKeyPub: string
  engineLabels: Record<string, string>
  farmLabels: string[]
  slots: number
}

export interface Lab {
  dir: string
  farmFile: string
  knownHosts: string
  identityFile: string
  sshConfig: string
  sshWrapperDir: string
  user: string
  images: string[]
  hosts: LabHost[]
}

export const REPO = resolve(__dirname, '..', '..')

export function lab(): Lab {
  const dir = process.env.YARDMASTER_LAB_DIR ?? '/var/lib/yardmaster-lab'
  const file = join(dir, 'lab.json')
  if (!existsSync(file)) {
    throw new Error(
      `The test lab is not up (${file} is missing). Run \`npm run lab:up\`, or \`npm test\`, which brings it up.`,
    )
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as Lab
  for (const h of info.hosts) {
    for (const [what, pidFile] of [
      ['sshd', h.sshdPidFile],
      ['dockerd', h.dockerdPidFile],
    ] as const) {
      let alive = false
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 0)
        alive = true
      } catch {
        /* no pid file, or no such process */
      }
      if (!alive)
        throw new Error(
          `The lab host ${h.name} is down (its ${what} is not running). Run \`npm run lab:up\`.`,
        )
    }
  }
  return info
}

export function host(name: string): LabHost {
  const h = lab().hosts.find((x) => x.name === name)
  if (!h) throw new Error(`no lab host ${name}`)
  return h
}

/** The host's own engine, through its socket: to check on the host what we did over SSH. */
export function hostEngine(name: string): Docker {
  return new Docker({ socketPath: host(name).dockerSocket })
}

/** Container events on a host, oldest first, read from the host's engine, of containers with all these labels. */
export async function containerEvents(
  name: string,
  labels: string[],
  since: number,
  actions: string[] = ['create', 'start', 'die', 'destroy'],
): Promise<Array<{ action: string; job: string; service: string | null; time: number }>> {
  // (Docker takes fractional seconds as strings; the typings only know numbers.)
  const stream = (await hostEngine(name).getEvents({
    since: String(Math.floor(since / 1000) - 1),
    // Sub-second precision: a whole-second `until` in the future makes the engine wait for it.
    until: (Date.now() / 1000).toFixed(3),
    filters: { type: ['container'], label: labels, event: actions },
  } as unknown as Parameters<Docker['getEvents']>[0])) as unknown as NodeJS.ReadableStream
  let text = ''
  for await (const chunk of stream) text += String(chunk)
  return text
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as { Action: string; timeNano: number; Actor: { Attributes: Record<string, string> } },
    )
    .map((e) => ({
      action: e.Action,
      job: e.Actor.Attributes['io.yardmaster.job'] ?? '',
      service: e.Actor.Attributes['io.yardmaster.service'] ?? null,
      time: e.timeNano / 1e6,
    }))
    .sort((a, b) => a.time - b.time)
}

/** Container create/start/die/destroy events of one run on one host. */
export async function runEvents(
  name: string,
  run: { instance: string; runId: number },
  since: number,
): Promise<Array<{ action: string; job: string; time: number }>> {
  const events = await containerEvents(
    name,
    [`io.yardmaster.instance=${run.instance}`, `io.yardmaster.run=${run.runId}`],
    since,
  )
  return events.map(({ action, job, time }) => ({ action, job, time }))
}

/** Runs a lab fault helper (test/lab/fault.sh). */
export function fault(action: string, hostName: string): void {
  execFileSync('bash', [join(REPO, 'test', 'lab', 'fault.sh'), action, hostName], { stdio: 'pipe' })
}
