/**
 * Secrets on the lab: a secret a step uses appears in no command line on the node, no container
 * config, no log line (Yardmaster's own included), no history row and no --json output; what a
 * step writes cannot forge the file-command framing; and a workflow mounts from a node only what
 * the farm file allows.
 */
import { execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { cli, tempDir, type CliResult } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'

const run = promisify(execFile)
const SECRET = 'tok-5ecr3t-7e1d'

/** Every command line on this machine, where the lab hosts' sshd sessions and containers run. */
async function commandLines(): Promise<string> {
  return (await run('ps', ['-eo', 'args', '--no-headers'], { maxBuffer: 16 << 20 })).stdout
}

/** Everything the lab engines show of the running containers of this test: configs and execs. */
async function engineViews(): Promise<string> {
  const views: unknown[] = []
  for (const h of lab().hosts) {
    const docker = hostEngine(h.name)
    for (const c of await docker.listContainers({ filters: { label: ['io.yardmaster.managed=true'] } })) {
      const info = await docker.getContainer(c.Id).inspect()
      views.push(info)
      for (const id of info.ExecIDs ?? [])
        views.push(
          await docker
            .getExec(id)
            .inspect()
            .catch(() => null),
        )
    }
  }
  return JSON.stringify(views)
}

/** Runs the CLI while watching the machine: returns what it printed and what ps and the engines showed meanwhile. */
async function watched(argv: string[], marker: string) {
  let done = false
  const running = cli(argv).finally(() => (done = true))
  let seen = ''
  let sawStep = false
  while (!done) {
    const [lines, engines] = await Promise.all([commandLines(), engineViews()])
    if (lines.includes(marker)) sawStep = true
    seen += lines + engines
    await new Promise((r) => setTimeout(r, 50))
  }
  return { res: await running, seen, sawStep }
}

function dump(dataDir: string): string {
  const db = openDatabase(dataDir)
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{
      name: string
    }>
    return JSON.stringify(tables.map((t) => db.prepare(`SELECT * FROM "${t.name}"`).all()))
  } finally {
    db.close()
  }
}

const WORKFLOW = `on: push
env:
  WF_TOKEN: \${{ secrets.TOKEN }}
jobs:
  a:
    runs-on: RUNS_ON
    outputs:
      leaked: \${{ steps.use.outputs.leaked }}
      kept: \${{ steps.use.outputs.kept }}
    steps:
      - id: first
        run: echo first
      - name: an expression in single quotes
        run: echo '\${{ steps.first.conclusion }}' | grep -x success
      - id: use
        env:
          STEP_TOKEN: \${{ secrets.TOKEN }}
        run: |
          echo "inline \${{ secrets.TOKEN }} env $WF_TOKEN step $STEP_TOKEN"
          echo "leaked=x\${{ secrets.TOKEN }}x" >> "$GITHUB_OUTPUT"
          echo "kept=plain" >> "$GITHUB_OUTPUT"
          sleep 2.71828
      - name: forge the framing
        run: |
          printf '@@ym:env@@\\nLD_PRELOAD=/tmp/evil.so\\n@@ym:path@@\\n/tmp/evil\\n' >> "$GITHUB_STEP_SUMMARY"
          echo "NODE_OPTIONS=--require /tmp/evil.js" >> "$GITHUB_ENV"
          echo "GITHUB_SHA=forged" >> "$GITHUB_ENV"
          echo "MINE=ok" >> "$GITHUB_ENV"
      - name: after the forgery
        run: echo "LD=[\${LD_PRELOAD:-}] NO=[\${NODE_OPTIONS:-}] SHA=[$GITHUB_SHA] MINE=[$MINE] PATH1=[\${PATH%%:*}]"
`

/** `yardmaster secrets set NAME`, the value piped on stdin as a user would (never in argv). */
async function storeSecret(dataDir: string, name: string, value: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'secrets', 'set', name, '--data-dir', dataDir], {
    env: { ...process.env, YARDMASTER_SECRETS_KEY: PASSPHRASE },
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  child.stdin.end(value + '\n')
  const code = await new Promise<number | null>((r) => child.on('exit', r))
  expect(code, out).toBe(0)
  return out
}

const PASSPHRASE = 'the lab secrets passphrase'
const BIN = join(REPO, 'bin', 'yardmaster.cjs')

// Docker: the secret is stored (`yardmaster secrets set`, sealed in the data dir) and the run
// takes it from there; shell: it is given with --secret. Both are masked the same way.
describe.each([
  { kind: 'docker', runsOn: 'general', stored: true },
  { kind: 'shell', runsOn: 'general', stored: false },
])('a secret on a $kind node (stored: $stored)', ({ kind, runsOn, stored }) => {
  let res: CliResult
  let seen: string
  let sawStep: boolean
  let dataDir: string

  it('runs the steps with the secret, and shows it nowhere', async () => {
    dataDir = tempDir()
    const farm = join(dataDir, 'farm.yml')
    const text = readFileSync(lab().farmFile, 'utf8')
    writeFileSync(farm, kind === 'shell' ? text.replace(/executor: docker/g, 'executor: shell') : text)
    const wf = join(dataDir, 'secret.yml')
    writeFileSync(wf, WORKFLOW.replace('RUNS_ON', runsOn))
    const given = stored ? [] : ['--secret', `TOKEN=${SECRET}`]
    if (stored) {
      // Stored under another case: names compare ignoring case, as GitHub's do.
      expect(await storeSecret(dataDir, 'token', SECRET)).toMatch(/stored TOKEN \(15 bytes/)
      expect(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).not.toContain(SECRET)
      process.env.YARDMASTER_SECRETS_KEY = PASSPHRASE
    }
    try {
      ;({ res, seen, sawStep } = await watched(
        ['run', wf, '--farm', farm, '--data-dir', dataDir, ...given, '--json'],
        'sleep 2.71828',
      ))
    } finally {
      delete process.env.YARDMASTER_SECRETS_KEY
    }
    expect(res.code, res.out + res.err).toBe(0)
    // The watch did see the step running, and never the secret: not in ps, not in the engines.
    expect(sawStep).toBe(true)
    expect(seen).not.toContain(SECRET)
    expect(res.out).toMatch(/^\[a\]\s+inline \*\*\* env \*\*\* step \*\*\*$/m)
  }, 60_000)

  it('is masked in the history and the --json report; an output holding it is dropped with a warning', () => {
    expect(res.out + res.err).not.toContain(SECRET)
    expect(dump(dataDir)).not.toContain(SECRET)
    const report = JSON.parse(res.out.trim().split('\n').at(-1)!) as {
      jobs: Record<string, { outputs: Record<string, string> }>
    }
    expect(report.jobs.a!.outputs).toEqual({ kept: 'plain' })
    expect(res.out).toMatch(/^\[a\] · Warning: Skip output 'leaked' since it may contain secret\.$/m)
  })

  it('keeps a quoted expression in a script quoted', () => {
    expect(res.out).toMatch(/^\[a\]\s+success$/m)
  })

  it('cannot be given env or PATH by a forged summary; NODE_OPTIONS and GITHUB_* are refused from $GITHUB_ENV', () => {
    expect(res.out).toMatch(
      /^\[a\] · Error: Can't store NODE_OPTIONS output parameter using '\$GITHUB_ENV' command\.$/m,
    )
    const after = res.out.split('\n').find((l) => l.includes('LD=['))!
    expect(after).toMatch(
      /LD=\[\] NO=\[\] SHA=\[(?!forged)[^\]]*\] MINE=\[ok\] PATH1=\[(?!\/tmp\/evil)[^\]]*\]/,
    )
    // What the summary said is shown as summary, nothing more.
    expect(res.out).toMatch(/^\[a\] · summary: LD_PRELOAD=\/tmp\/evil\.so$/m)
  })
})

describe("Yardmaster's own lines", () => {
  it('are masked too: a secret in an error text does not show in the failure', async () => {
    const dir = tempDir()
    const wf = join(dir, 'timeout.yml')
    writeFileSync(
      wf,
      [
        'on: push',
        'jobs:',
        '  a:',
        '    runs-on: general',
        '    env: { LIMIT: "${{ secrets.TOKEN }}" }',
        '    steps:',
        '      - run: "true"',
        '        timeout-minutes: ${{ env.LIMIT }}',
        '',
      ].join('\n'),
    )
    const res = await cli([
      'run',
      wf,
      '--farm',
      lab().farmFile,
      '--data-dir',
      dir,
      '--secret',
      `TOKEN=${SECRET}`,
    ])
    expect(res.code, res.out + res.err).toBe(1)
    expect(res.out).toMatch(
      /the step could not run: timeout-minutes must be a positive number of minutes, not "\*\*\*"/,
    )
    expect(res.out + res.err).not.toContain(SECRET)
    expect(dump(dir)).not.toContain(SECRET)
  })
})

describe('bind mounts', () => {
  const job = (volumes: string, extra = '') =>
    `on: push\njobs:\n${extra}  a:\n    runs-on: general\n    container:\n      image: lab/busybox:1\n      volumes: [${volumes}]\n    steps:\n      - run: ls /host >/dev/null && echo mounted\n`

  it('refuses a host path by default, before the run, naming the volume and the setting to change', async () => {
    const dir = tempDir()
    const wf = join(dir, 'root.yml')
    writeFileSync(wf, job('"/:/host"'))
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dir])
    expect(res.code).toBe(2)
    expect(res.err).toContain(`${wf}:7:17:`)
    expect(res.err).toContain('"/:/host" would bind-mount the host path "/"')
    expect(res.err).toContain(`allowedHostPaths of node n1 in ${lab().farmFile}:`)
    expect(res.err).toContain('(jobs.a.container.volumes[0])')
  })

  it('mounts a host path the farm allows on that node, and named volumes always', async () => {
    const dir = tempDir()
    const farm = join(dir, 'farm.yml')
    writeFileSync(
      farm,
      readFileSync(lab().farmFile, 'utf8').replace(/(name: n1\n)/, '$1    allowedHostPaths: [/etc/ssh]\n'),
    )
    const wf = join(dir, 'etc.yml')
    writeFileSync(wf, job('"/etc/ssh:/host:ro", "ym-test-cache:/cache"'))
    const res = await cli(['run', wf, '--farm', farm, '--data-dir', dir])
    expect(res.code, res.out + res.err).toBe(0)
    expect(res.out).toMatch(/^\[a\]\s+mounted$/m)
    await hostEngine('n1')
      .getVolume('ym-test-cache')
      .remove()
      .catch(() => {})
  })

  it('refuses at the node a host path only the run could evaluate', async () => {
    const dir = tempDir()
    const wf = join(dir, 'late.yml')
    writeFileSync(
      wf,
      job(
        '"${{ needs.pick.outputs.path }}:/host"',
        '  pick:\n    runs-on: general\n    outputs: { path: "${{ steps.p.outputs.path }}" }\n    steps:\n      - id: p\n        run: echo "path=/" >> "$GITHUB_OUTPUT"\n',
      ).replace(
        '    runs-on: general\n    container:',
        '    needs: pick\n    runs-on: general\n    container:',
      ),
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dir])
    expect(res.code).toBe(1)
    expect(res.out).toMatch(
      /\[a\]\s+· job failed: could not start the job on n1: the job's volumes would bind-mount "\/" from node n1, which its farm file does not allow: .*allowedHostPaths of node n1 in /,
    )
  })
})
