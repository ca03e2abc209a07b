/**
 * GitHub's meaning of a workflow, end to end on a lab host: what the steps print, what the run
 * reports (--json), and what the history holds.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir, type CliResult } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'

const fixture = join(REPO, 'test', 'fixtures', 'lab', 'semantics.yml')

describe('workflow semantics on the lab', () => {
  let res: CliResult
  let dataDir: string
  let report: {
    runId: number
    conclusion: string
    jobs: Record<
      string,
      {
        node: string | null
        conclusion: string
        outputs: Record<string, string>
        steps: Array<{ name: string; outcome: string; conclusion: string; exitCode: number | null }>
      }
    >
  }

  beforeAll(async () => {
    dataDir = tempDir()
    res = await cli([
      'run',
      fixture,
      '--farm',
      lab().farmFile,
      '--data-dir',
      dataDir,
      '--input',
      'who=farm',
      '--input',
      'loud=true',
      '--secret',
      'TOKEN=tok-9f8e7d',
      '--json',
    ])
    report = JSON.parse(res.out.trim().split('\n').at(-1)!) as typeof report
  }, 60_000)

  const line = (job: string, text: string | RegExp) =>
    res.out
      .split('\n')
      .some((l) => l.startsWith(`[${job}]`) && (typeof text === 'string' ? l.endsWith(text) : text.test(l)))

  it('succeeds, and reports each job and step with GitHub’s outcome and conclusion', () => {
    expect(res.code).toBe(0)
    expect(report.conclusion).toBe('success')
    expect(report.jobs.produce!.steps.map((s) => [s.name, s.outcome, s.conclusion, s.exitCode])).toEqual([
      ['prepare the working directory', 'success', 'success', 0],
      ['Run echo "answer=42" >> "$GITHUB_OUTPUT"', 'success', 'success', 0],
      ['env, inputs and path', 'success', 'success', 0],
      ['hash files', 'success', 'success', 0],
      ['allowed to fail', 'failure', 'success', 3],
      ['skipped on success', 'skipped', 'skipped', null],
      ['report', 'success', 'success', 0],
      ['pipefail under bash', 'failure', 'success', 1],
      ['too slow', 'failure', 'success', null],
    ])
    expect(report.jobs.produce).toMatchObject({
      node: 'n1',
      conclusion: 'success',
      outputs: { answer: '42', story: 'line one\nline two' },
    })
    expect(report.jobs.consume).toMatchObject({ conclusion: 'success' })
    expect(report.jobs.never).toMatchObject({ conclusion: 'skipped', node: null })
  })

  it('evaluates expressions over inputs, env, steps, job and needs', () => {
    expect(line('produce', 'hello farm loud=true level=low later=from-env-file')).toBe(true)
    expect(line('produce', 'flaky outcome=failure conclusion=success status=success')).toBe(true)
    expect(line('consume', 'answer=42 result=success')).toBe(true)
    expect(line('consume', 'story=line one')).toBe(true)
    expect(line('consume', 'line two')).toBe(true)
    expect(res.out).not.toMatch(/^\[\w+\]\s+must not run/m) // (step titles in the JSON report quote it)
  })

  it('computes hashFiles() over the workspace on the node, as GitHub does', () => {
    const sha = (s: string) => createHash('sha256').update(s).digest()
    const expected = createHash('sha256').update(sha('alpha\n')).update(sha('beta\n')).digest('hex')
    expect(line('produce', `hash=${expected} none=`)).toBe(true)
  })

  it('runs file commands: GITHUB_PATH, defaults.run.working-directory, the step summary', () => {
    expect(line('produce', 'tool-from-path')).toBe(true)
    expect(line('produce', 'pwd=/workspace/sub')).toBe(true)
    expect(line('produce', 'summary: ### summary line')).toBe(true)
  })

  it('stops a step at its timeout-minutes, as a failure', () => {
    expect(line('produce', '· the step timed out after 1.2 s (timeout-minutes)')).toBe(true)
  })

  it('masks secrets and ::add-mask:: values, and turns ::warning:: into an annotation', () => {
    expect(line('produce', 'mask check: *** and ***')).toBe(true)
    expect(res.out).not.toContain('hunter2')
    expect(res.out).not.toContain('tok-9f8e7d')
    expect(line('produce', 'Warning: look here (app.c:3)')).toBe(true)
    expect(res.out).not.toContain('::add-mask::')
  })

  it('never stores a secret in the history', () => {
    const db = openDatabase(dataDir)
    try {
      const rows = db.prepare('SELECT text FROM log_lines').all() as Array<{ text: string }>
      expect(rows.length).toBeGreaterThan(5)
      expect(rows.some((r) => r.text.includes('tok-9f8e7d') || r.text.includes('hunter2'))).toBe(false)
      const detail = new RunStore(db).getRun(report.runId)
      expect(detail.jobs.find((j) => j.key === 'produce')!.outputs).toEqual({
        answer: '42',
        story: 'line one\nline two',
      })
    } finally {
      db.close()
    }
  })

  it('refuses inputs the workflow does not declare or cannot take, before running anything', async () => {
    const dir = tempDir()
    const bad = await cli([
      'run',
      fixture,
      '--farm',
      lab().farmFile,
      '--data-dir',
      dir,
      '--input',
      'level=extreme',
      '--input',
      'color=red',
    ])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('unknown input "color"; the workflow\'s inputs are: who, loud, level')
    expect(bad.err).toContain('input "level" must be one of: low, high (not "extreme")')
  })
})

describe('--platform and --job on the lab', () => {
  it('runs ubuntu-latest jobs in the image --platform names, and only the selected job and its needs', async () => {
    const dir = tempDir()
    const wf = join(dir, 'platform.yml')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(
      wf,
      'on: push\njobs:\n  first:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "first in $(cat /etc/os-release 2>/dev/null | head -1 || echo busybox)"\n' +
        '  second:\n    needs: first\n    runs-on: ubuntu-latest\n    steps:\n      - run: busybox | head -1\n' +
        '  other:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "other must not run"\n',
    )
    const res = await cli([
      'run',
      wf,
      '--farm',
      lab().farmFile,
      '--data-dir',
      dir,
      '--platform',
      'ubuntu-latest=lab/busybox:1',
      '--job',
      'second',
      '--json',
    ])
    expect(res.code).toBe(0)
    const report = JSON.parse(res.out.trim().split('\n').at(-1)!) as {
      jobs: Record<string, { node: string }>
    }
    expect(Object.keys(report.jobs)).toEqual(['first', 'second'])
    expect(res.out).toMatch(/^\[second\]\s+BusyBox v/m)
    expect(res.out).toMatch(/in image lab\/busybox:1/)
    expect(res.out).not.toContain('other must not run')
  })
})

describe('container: env, volumes and options on the lab', () => {
  it('gives the job container its env and bind mounts, and its --cpus/--memory as limits', async () => {
    const { mkdtempSync, writeFileSync, chmodSync, readFileSync } = await import('node:fs')
    const dir = tempDir()
    // The engine runs on this machine, so a folder here can be mounted into the job.
    const shared = mkdtempSync('/tmp/ym-volume-')
    chmodSync(shared, 0o755)
    writeFileSync(join(shared, 'hello.txt'), 'from the host\n')
    const wf = join(dir, 'container.yml')
    writeFileSync(
      wf,
      `on: push\njobs:\n  a:\n    runs-on: general\n    container:\n      image: lab/busybox:1\n      env: { FROM_CONTAINER: "yes" }\n      volumes: ["${shared}:/data:ro"]\n      options: --cpus 0.5 --memory 64m\n    steps:\n      - run: echo "env=$FROM_CONTAINER"; cat /data/hello.txt; cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us\n`,
    )
    // Host paths are refused unless the farm allows them on the node (allowedHostPaths).
    const farm = join(dir, 'farm.yml')
    writeFileSync(
      farm,
      readFileSync(lab().farmFile, 'utf8').replace(/(name: n1\n)/, `$1    allowedHostPaths: [${shared}]\n`),
    )
    const res = await cli(['run', wf, '--farm', farm, '--data-dir', dir])
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/^\[a\]\s+env=yes$/m)
    expect(res.out).toMatch(/^\[a\]\s+from the host$/m)
    expect(res.out).toMatch(/^\[a\]\s+(50000 100000|50000)$/m)
  })

  it('refuses a job that asks for more than any node has, before the run starts', async () => {
    const { writeFileSync, readFileSync } = await import('node:fs')
    const dir = tempDir()
    const farm = join(dir, 'farm.yml')
    writeFileSync(
      farm,
      readFileSync(lab().farmFile, 'utf8').replace(/(name: n1\n)/, '$1    cpus: 2\n    memory: 1g\n'),
    )
    const wf = join(dir, 'big.yml')
    writeFileSync(
      wf,
      'on: push\njobs:\n  big:\n    runs-on: general\n    container:\n      image: lab/busybox:1\n      options: --cpus 8\n    steps:\n      - run: "true"\n',
    )
    const res = await cli(['run', wf, '--farm', farm, '--data-dir', dir])
    expect(res.code).toBe(2)
    // (No node fitted the declared labels, so the farm was probed: n1's labels include what it is.)
    expect(res.err).toMatch(/n1 \[self-hosted, linux, general[^\]]*\] has 2 cpus, the job asks for 8/)
  })
})

describe('services on the lab', () => {
  it('starts service containers beside the job, reachable by name, and removes them after', async () => {
    const { writeFileSync } = await import('node:fs')
    const dir = tempDir()
    const wf = join(dir, 'services.yml')
    writeFileSync(
      wf,
      `on: push
jobs:
  a:
    runs-on: general
    container: lab/busybox:1
    services:
      web:
        image: lab/busybox:1
        env: { GREETING: service-up }
        command: mkdir -p /www && echo "$GREETING" > /www/index.html && exec busybox httpd -f -p 8080 -h /www
    steps:
      - run: for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://web:8080/ && exit 0; sleep 0.3; done; exit 1
`,
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dir])
    expect(res.out).toMatch(/^\[a\]\s+service-up$/m)
    expect(res.code).toBe(0)
    expect(res.out).toContain('starting service web (lab/busybox:1)')
    const left = await hostEngine('n1').listContainers({
      all: true,
      filters: { label: ['io.yardmaster.service=web'] },
    })
    expect(left).toEqual([])
  })
})

describe('automatic labels on the lab', () => {
  it('matches runs-on against what nodes are (OS, architecture, docker, engine labels) when declared labels do not say', async () => {
    const { writeFileSync } = await import('node:fs')
    const dir = tempDir()
    const wf = join(dir, 'auto.yml')
    writeFileSync(
      wf,
      'on: push\njobs:\n  a:\n    runs-on: [self-hosted, linux, x64, docker, "farm.node=n2"]\n    container: lab/busybox:1\n    steps:\n      - run: echo "on $(uname -m)"\n',
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dir, '--json'])
    expect(res.code).toBe(0)
    const report = JSON.parse(res.out.trim().split('\n').at(-1)!) as {
      jobs: Record<string, { node: string }>
    }
    expect(report.jobs.a!.node).toBe('n2')
  })
})

describe('nodes out of service', () => {
  it('starts no job on a cordoned node, says why, and uses it again after resume', async () => {
    const { writeFileSync } = await import('node:fs')
    const dir = tempDir()
    const wf = join(dir, 'general.yml')
    writeFileSync(
      wf,
      'on: push\njobs:\n  a:\n    runs-on: general\n    container: lab/busybox:1\n    steps:\n      - run: echo ran\n',
    )
    const farm = lab().farmFile
    expect(
      (await cli(['node', 'n1', 'cordon', '--reason', 'disk swap', '--farm', farm, '--data-dir', dir])).code,
    ).toBe(0)
    const refused = await cli(['run', wf, '--farm', farm, '--data-dir', dir])
    expect(refused.code).toBe(2)
    expect(refused.err).toMatch(/out of service: n1 \(.*cordoned.*disk swap.*\)/)
    expect((await cli(['node', 'n1', 'resume', '--farm', farm, '--data-dir', dir])).code).toBe(0)
    const ok = await cli(['run', wf, '--farm', farm, '--data-dir', dir])
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(/^\[a\]\s+ran$/m)
  })
})
