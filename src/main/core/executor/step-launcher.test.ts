import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StepCommand } from './job-environment'
import { infrastructureReason } from './job-failures'
import { until } from '../../../../test/support/until'
import {
  execDelivery,
  followRecord,
  MAX_STEP_TEXT,
  shellDelivery,
  StepTooLargeError,
  stepFiles,
  unexportable,
} from './step-launcher'

/** The umask a shell started from here has (what a step must keep). */
const callerUmask = () => spawnSync('/bin/sh', ['-c', 'umask'], { encoding: 'utf8' }).stdout.trim()

/** Runs a step the way a shell node does: the command line, with the input on standard input. */
function runOnShell(
  cmd: Partial<StepCommand> & { script: string },
  opts: { cwd?: string; exports?: Record<string, string> } = {},
) {
  const parent = mkdtempSync(join(tmpdir(), 'ym-launch-'))
  const files = stepFiles(
    { shell: null, env: {}, workingDirectory: null, ...cmd },
    { parent, workspace: opts.cwd ?? parent, exports: opts.exports ?? {} },
  )
  const { command, input } = shellDelivery(files)
  const r = spawnSync('/bin/sh', ['-c', command], {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, files, command, parent }
}

describe('step launcher (shell delivery)', () => {
  it('runs shell: bash as GitHub does, with pipefail', () => {
    expect(runOnShell({ shell: 'bash', script: 'false | true; echo after' })).toMatchObject({
      code: 1,
      stdout: '',
    })
    expect(runOnShell({ shell: 'bash', script: 'echo "$BASH_VERSION" | cut -c1' }).stdout).toMatch(/^\d\n$/)
  })

  it('runs shell: sh with -e, and no shell as bash -e (no pipefail) where bash exists', () => {
    expect(runOnShell({ shell: 'sh', script: 'echo one; false; echo two' })).toMatchObject({
      code: 1,
      stdout: 'one\n',
    })
    const r = runOnShell({
      shell: null,
      script: 'false | true; echo "${BASH_VERSION:+bash}"; false; echo no',
    })
    expect(r).toMatchObject({ code: 1, stdout: 'bash\n' })
  })

  it('gives a custom shell the script file for {0}, with the extension its program expects', () => {
    const r = runOnShell({ shell: 'sh -c "cat {0}; echo; echo {0}"', script: 'echo hi' })
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['echo hi', ''])
    expect(r.stdout.split('\n')[2]).toMatch(/\/_steps\/[0-9a-f]{16}\/script\.sh$/)
    expect(
      stepFiles(
        { shell: 'python', script: '', env: {}, workingDirectory: null },
        { parent: '/t', workspace: '/', exports: null },
      ).scriptPath,
    ).toMatch(/script\.py$/)
    expect(
      stepFiles(
        { shell: 'pwsh -command ". \'{0}\'"', script: '', env: {}, workingDirectory: null },
        { parent: '/t', workspace: '/', exports: null },
      ).scriptPath,
    ).toMatch(/script\.ps1$/)
  })

  it('keeps the script and the environment off the command line', () => {
    const r = runOnShell(
      { shell: 'sh', script: 'echo "$TOKEN" | tr a-z A-Z' },
      { exports: { TOKEN: 'hunter2-secret' } },
    )
    expect(r).toMatchObject({ code: 0, stdout: 'HUNTER2-SECRET\n' })
    expect(r.command).not.toContain('hunter2')
    expect(r.command).not.toContain('tr a-z')
    expect(r.command).toMatch(
      /^\(umask 077 && mkdir -p \S+ && cat > \S+launch\.sh\) && exec sh \S+launch\.sh <\/dev\/null$/,
    )
  })

  it('passes values verbatim, and the script untouched: quotes, dollars, backquotes, a here-doc of its own', () => {
    const tricky = 'it\'s $HOME `id` "q" \\ end'
    const script = [
      'x=\'single "double" $notexpanded\'',
      'echo "$x"',
      "echo '${{ already.evaluated }}' | grep -c evaluated",
      "cat <<'EOF'",
      'inner $heredoc',
      'EOF',
      'printf "%s\\n" "$TRICKY"',
    ].join('\n')
    const r = runOnShell({ shell: 'sh', script }, { exports: { TRICKY: tricky } })
    expect(r.stdout).toBe(`single "double" $notexpanded\n1\ninner $heredoc\n${tricky}\n`)
  })

  it('makes the step folder private and removes it when the step ends, whatever its exit code', () => {
    const seen = runOnShell({ shell: 'sh', script: 'stat -c %a "$(dirname "$0")"; umask; exit 4' })
    expect(seen.code).toBe(4)
    // Private folder; the step itself keeps the caller's umask (what it creates is not private).
    expect(seen.stdout).toBe(`700\n${callerUmask()}\n`)
    expect(existsSync(seen.files.dir)).toBe(false)
    expect(readdirSync(join(seen.parent, '_steps'))).toEqual([])
    expect(statSync(join(seen.parent, '_steps')).mode & 0o777).toBe(0o700)
  })

  it('runs the prelude and PATH change first, and fails with 127 without running the step if the prelude fails', () => {
    const ok = runOnShell({
      shell: 'sh',
      script: 'echo "$PATH" | cut -d: -f1; echo "$PRE"',
      prelude: 'export PRE=made',
      pathPrepend: ['/opt/x bin'],
    })
    expect(ok.stdout).toBe('/opt/x bin\nmade\n')
    expect(runOnShell({ shell: 'sh', script: 'echo should-not-run', prelude: 'false' })).toMatchObject({
      code: 127,
      stdout: '',
    })
  })

  it('runs the epilogue after the step, keeping the step’s exit code', () => {
    const r = runOnShell({ shell: 'sh', script: 'echo step; exit 3', epilogue: 'echo epilogue' })
    expect(r).toMatchObject({ code: 3, stdout: 'step\nepilogue\n' })
  })

  it('runs in the working directory, and fails without running the step when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ym-cwd-'))
    expect(runOnShell({ shell: 'sh', script: 'pwd' }, { cwd: dir }).stdout).toBe(`${dir}\n`)
    const missing = runOnShell({ shell: 'sh', script: 'echo ran' }, { cwd: join(dir, 'nope') })
    expect(missing.code).toBe(1)
    expect(missing.stdout).toBe('')
  })

  it('gives the step an empty standard input', () => {
    expect(runOnShell({ shell: 'sh', script: 'cat; echo end' }).stdout).toBe('end\n')
  })

  it('exports only shell variable names, and says which others it cannot pass', () => {
    const r = runOnShell(
      { shell: 'sh', script: 'env | grep -c "^my-var=" || true' },
      { exports: { 'my-var': 'x', OK_1: 'y' } },
    )
    expect(r.stdout).toBe('0\n')
    expect(unexportable({ 'my-var': 'x', OK_1: 'y', '1X': 'z' })).toEqual(['my-var', '1X'])
  })
})

/** Runs a step the way `docker exec` does: its command line, with the step's env and the delivery's. */
function runAsExec(cmd: Partial<StepCommand> & { script: string }, env: Record<string, string> = {}) {
  const parent = mkdtempSync(join(tmpdir(), 'ym-exec-'))
  const files = stepFiles(
    { shell: null, env: {}, workingDirectory: null, ...cmd },
    { parent, workspace: parent, exports: null },
  )
  const delivery = execDelivery(files)
  const r = spawnSync(delivery.cmd[0]!, delivery.cmd.slice(1), {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env, ...delivery.env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, files, delivery }
}

describe('step launcher (exec delivery, docker nodes)', () => {
  it('writes the script and launcher from the environment and runs the step; the command line holds only paths', () => {
    const r = runAsExec(
      { shell: 'sh', script: 'echo "$TOKEN" | tr a-z A-Z; stat -c %a "$0" "$(dirname "$0")"; umask' },
      { TOKEN: 'hunter2-secret' },
    )
    expect(r).toMatchObject({ code: 0, stdout: `HUNTER2-SECRET\n600\n700\n${callerUmask()}\n`, stderr: '' })
    expect(r.delivery.cmd.join(' ')).not.toMatch(/hunter2|tr a-z/)
    expect(existsSync(r.files.dir)).toBe(false)
  })

  it('keeps the pieces out of the step’s environment', () => {
    const r = runAsExec({ shell: 'sh', script: 'env | grep -c "^YARDMASTER_" || true' })
    expect(r.stdout).toBe('0\n')
  })

  it('carries a script too long for one variable in pieces, multi-byte characters whole', () => {
    const line = 'echo "é ✓ 漢字 😀 $((1 + 1))"\n'
    const script = line.repeat(Math.ceil(300_000 / line.length))
    const r = runAsExec({ shell: 'sh', script: `${script}cat "$0" | wc -c` })
    expect(
      Object.keys(r.delivery.env).filter((k) => k.startsWith('YARDMASTER_SCRIPT_')).length,
    ).toBeGreaterThan(10)
    const out = r.stdout.trim().split('\n')
    expect(out.slice(0, 2)).toEqual(['é ✓ 漢字 😀 2', 'é ✓ 漢字 😀 2'])
    expect(Number(out.at(-1))).toBe(Buffer.byteLength(`${script}cat "$0" | wc -c`))
  })

  it('refuses a step too large to hand over, saying what to do', () => {
    const make = () =>
      stepFiles(
        { shell: 'sh', script: 'x'.repeat(MAX_STEP_TEXT + 1), env: {}, workingDirectory: null },
        { parent: '/t', workspace: '/', exports: null },
      )
    expect(make).toThrow(StepTooLargeError)
    expect(make).toThrow(/put the script in a file of the repository and run that/)
  })
})

describe(
  'step launcher: the step’s record on the node (it outlives its orchestrator)',
  { timeout: 30_000 },
  () => {
    const withRecord = (script: string, tee = 'tee') => {
      const parent = mkdtempSync(join(tmpdir(), 'ym-record-'))
      const record = join(parent, '_record', '0')
      // `tee` as the node has it: GNU coreutils here, busybox in the lab's images.
      const files = stepFiles(
        { shell: 'sh', env: {}, workingDirectory: null, script, record, prelude: 'echo set up' },
        { parent, workspace: parent, exports: null },
      )
      const delivery = execDelivery(files)
      const bin = mkdtempSync(join(tmpdir(), 'ym-bin-'))
      if (tee !== 'tee') spawnSync('ln', ['-s', tee, join(bin, 'tee')])
      const env = { PATH: `${bin}:${process.env.PATH}`, ...delivery.env }
      return { parent, record, files, delivery, env }
    }
    const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : null)

    it('keeps each stream as printed, the prelude’s and epilogue’s output too, and the exit code last', () => {
      const s = withRecord('echo out; echo err >&2; exit 3')
      const r = spawnSync(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), { encoding: 'utf8', env: s.env })
      // The orchestrator gets the same output as without a record.
      expect([r.status, r.stdout, r.stderr]).toEqual([3, 'set up\nout\n', 'err\n'])
      expect(read(join(s.record, 'out'))).toBe('set up\nout\n')
      expect(read(join(s.record, 'err'))).toBe('err\n')
      expect(read(join(s.record, 'rc'))).toBe('3\n')
      expect(Number(read(join(s.record, 'pid')))).toBeGreaterThan(0)
      expect(statSync(s.record).mode & 0o777).toBe(0o700)
      // The script itself is gone with its folder; the record stays until the job's environment goes.
      expect(existsSync(s.files.dir)).toBe(false)
    })

    it('keeps the checkpoint it was given as the record’s state.json, private, off the command line', () => {
      const parent = mkdtempSync(join(tmpdir(), 'ym-record-'))
      const record = join(parent, '_record', '2')
      const checkpoint = JSON.stringify({ step: 2, env: { TOKEN: 'from-an-earlier-step' } })
      const files = stepFiles(
        { shell: 'sh', env: {}, workingDirectory: null, script: 'cat "$0" >/dev/null', record, checkpoint },
        { parent, workspace: parent, exports: null },
      )
      const d = execDelivery(files)
      const r = spawnSync(d.cmd[0]!, d.cmd.slice(1), {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, ...d.env },
      })
      expect(r.status).toBe(0)
      expect(read(join(record, 'state.json'))).toBe(checkpoint)
      expect(statSync(join(record, 'state.json')).mode & 0o777).toBe(0o600)
      expect(d.cmd.join(' ')).not.toContain('from-an-earlier-step')
    })

    it('records an early end too (the working directory missing), with its exit code', () => {
      const parent = mkdtempSync(join(tmpdir(), 'ym-record-'))
      const record = join(parent, 'rec')
      const files = stepFiles(
        { shell: 'sh', env: {}, workingDirectory: 'missing', script: 'echo never', record },
        { parent, workspace: parent, exports: null },
      )
      const d = execDelivery(files)
      const r = spawnSync(d.cmd[0]!, d.cmd.slice(1), {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, ...d.env },
      })
      expect(r.status).toBe(1)
      expect(read(join(record, 'rc'))).toBe('1\n')
      expect(read(join(record, 'out'))).toBe('')
    })

    for (const tee of ['tee', '/bin/busybox']) {
      it(`goes on, and keeps every line, once nobody reads its output any more (${tee === 'tee' ? 'GNU' : 'busybox'} tee)`, async () => {
        if (tee !== 'tee' && !existsSync(tee))
          throw new Error('busybox is missing: apt-get install busybox-static')
        const s = withRecord(
          'echo "line 1"; echo e1 >&2; sleep 0.5; i=2; while [ $i -le 200 ]; do echo "line $i"; echo "e$i" >&2; i=$((i+1)); done',
          tee,
        )
        const child = spawn(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), {
          env: s.env,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        // The orchestrator reads the first line, then dies: its ends of the output close.
        await new Promise<void>((r) => child.stdout.once('data', () => r()))
        child.stdout.destroy()
        child.stderr.destroy()
        const code = await new Promise<number | null>((r) => child.once('exit', r))
        expect(code).toBe(0)
        const want = (p: string) => Array.from({ length: 200 }, (_, i) => `${p}${i + 1}`)
        expect(read(join(s.record, 'out'))!.trim().split('\n')).toEqual(['set up', ...want('line ')])
        expect(read(join(s.record, 'err'))!.trim().split('\n')).toEqual(want('e'))
        expect(read(join(s.record, 'rc'))).toBe('0\n')
      })
    }

    it('ends the step without waiting for a process it left in the background, which lives on', async () => {
      const s = withRecord('(sleep 6; echo late) & echo left it')
      // The launcher's exit, not its output's end: the background process's tee still holds that.
      const child = spawn(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), { env: s.env, stdio: 'ignore' })
      expect(await new Promise((r) => child.once('exit', r))).toBe(0)
      expect(read(join(s.record, 'rc'))).toBe('0\n')
      // Ended before the background process printed: bounded by the drain wait, not by it.
      expect(read(join(s.record, 'out'))).toBe('set up\nleft it\n')
      // It was not killed: what it prints later still reaches the record.
      await until(() => read(join(s.record, 'out'))!.endsWith('late\n'), 'the late line', 10_000)
    }, 20_000)

    it('keeps what a cancelled step says in its grace period: SIGTERM to every process spares the tees', async () => {
      const s = withRecord("trap 'echo cleaning up; exit 7' TERM; echo started; while :; do sleep 0.1; done")
      const child = spawn(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), {
        env: s.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      await until(() => out.includes('started'), 'the step started')
      // As a cancel does in a container (kill -TERM -1): every process of the step's group.
      process.kill(-child.pid!, 'SIGTERM')
      await new Promise((r) => child.once('close', r))
      expect(out).toBe('set up\nstarted\ncleaning up\n')
      expect(read(join(s.record, 'out'))).toBe('set up\nstarted\ncleaning up\n')
    })

    const follow = (record: string) =>
      spawnSync('sh', ['-c', followRecord(record)], { encoding: 'utf8', env: { PATH: process.env.PATH } })

    it('is followed by the next orchestrator: all of the output from the start, then the exit code', async () => {
      const s = withRecord(
        'i=1; while [ $i -le 40 ]; do echo "line $i"; echo "e$i" >&2; [ $i = 20 ] && sleep 1; i=$((i+1)); done; exit 5',
      )
      const child = spawn(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), {
        env: s.env,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
      await new Promise<void>((r) => child.stdout.once('data', () => r()))
      // The orchestrator that started it is gone; the next one follows the record while the step runs.
      child.stdout.destroy()
      const f = follow(s.record)
      expect(f.status).toBe(5)
      const want = (p: string) => Array.from({ length: 40 }, (_, i) => `${p}${i + 1}`)
      expect(f.stdout.trim().split('\n')).toEqual(['set up', ...want('line ')])
      expect(f.stderr.trim().split('\n')).toEqual(want('e'))
      // Once it has ended: the same, at once.
      expect(follow(s.record)).toMatchObject({ status: 5, stdout: f.stdout, stderr: f.stderr })
    })

    it('is followed to 137 when the step was killed before it could write its exit code', async () => {
      const s = withRecord('echo started; sleep 30')
      const child = spawn(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), {
        env: s.env,
        stdio: ['ignore', 'pipe', 'ignore'],
        detached: true,
      })
      await until(
        () => existsSync(join(s.record, 'out')) && read(join(s.record, 'out'))!.includes('started'),
        'started',
      )
      process.kill(-child.pid!, 'SIGKILL')
      await new Promise((r) => child.once('exit', r))
      expect(follow(s.record)).toMatchObject({ status: 137, stdout: 'set up\nstarted\n' })
    })

    it('keeps SIGPIPE as the step expects it: a writer into a closed pipe dies quietly', () => {
      const s = withRecord('yes | head -n 1')
      const r = spawnSync(s.delivery.cmd[0]!, s.delivery.cmd.slice(1), { encoding: 'utf8', env: s.env })
      expect([r.status, r.stdout, r.stderr]).toEqual([0, 'set up\ny\n', ''])
    })
  },
)

describe('step launcher: what review found', () => {
  it('does not run a script that could not be written in full (a full disk)', () => {
    const parent = mkdtempSync(join(tmpdir(), 'ym-full-'))
    const files = stepFiles(
      { shell: 'sh', script: 'echo ran', env: {}, workingDirectory: null },
      { parent, workspace: parent, exports: {} },
    )
    // /dev/full: every write fails with ENOSPC.
    const full = {
      ...files,
      scriptPath: '/dev/full',
      launcher: files.launcher.replaceAll(files.scriptPath, '/dev/full'),
    }
    const { command, input } = shellDelivery(full)
    const r = spawnSync('/bin/sh', ['-c', command], { input, encoding: 'utf8' })
    expect(r.status).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain("yardmaster: could not write the step's script on the node")
  })

  it('leaves bash’s read-only names (UID) out of the exports, where sh may be bash', () => {
    expect(unexportable({ UID: '1000', EUID: '0', PPID: '1', OK: 'x' })).toEqual(['UID', 'EUID', 'PPID'])
    const parent = mkdtempSync(join(tmpdir(), 'ym-ro-'))
    const files = stepFiles(
      { shell: 'sh', script: 'echo fine', env: {}, workingDirectory: null },
      { parent, workspace: parent, exports: { UID: '1000' } },
    )
    expect(files.launcher).not.toContain('export UID')
    const { command, input } = shellDelivery(files)
    const r = spawnSync('bash', ['--posix', '-c', command], { input, encoding: 'utf8' })
    expect(r.stdout).toBe('fine\n')
  })

  it('counts a step too large as the job’s fault, never the node’s', () => {
    let err: unknown
    try {
      stepFiles(
        { shell: 'sh', script: 'x'.repeat(MAX_STEP_TEXT + 1), env: {}, workingDirectory: null },
        { parent: '/t', workspace: '/', exports: {} },
      )
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(StepTooLargeError)
    expect(infrastructureReason(err)).toBeNull()
  })
})
