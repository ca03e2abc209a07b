import { existsSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import type { CommandRunner } from './command-runner'
import { LocalCommandRunner } from './command-runner'
import type { JobEnvironment, StepCommand } from './job-environment'
import { ShellExecutor } from './shell-executor'

const live: JobEnvironment[] = []
afterEach(async () => {
  for (const env of live.splice(0)) await env.dispose()
})

async function prepare(env: Record<string, string> = {}, jobKey = 'build') {
  const job = await new ShellExecutor(new LocalCommandRunner()).prepare(
    { instance: 'test-instance', runId: 7, jobKey, image: 'ignored:latest', env },
    () => {},
    new AbortController().signal,
  )
  live.push(job)
  return job
}

async function step(
  job: JobEnvironment,
  cmd: Partial<StepCommand> & { script: string },
  signal?: AbortSignal,
) {
  let stdout = ''
  let stderr = ''
  const code = await job.runStep(
    { shell: null, env: {}, workingDirectory: null, ...cmd },
    (stream, d) => {
      if (stream === 'stdout') stdout += d.toString()
      else stderr += d.toString()
    },
    signal ?? new AbortController().signal,
  )
  return { code, stdout, stderr }
}

describe('ShellExecutor over a local shell', () => {
  it('makes a fresh workspace per job, named after the run and job', async () => {
    const a = await prepare({}, 'build/linux x64')
    const b = await prepare({}, 'build/linux x64')
    expect(a.workspace).not.toBe(b.workspace)
    expect(a.workspace).toMatch(/\/yardmaster-7-build_linux_x64-[A-Za-z0-9]{6}\/work$/)
    expect(a.workspace.startsWith(`${process.env.TMPDIR || '/tmp'}/`)).toBe(true)
    expect(existsSync(a.workspace)).toBe(true)
    expect(a.description).toBe(`workspace ${a.workspace}`)
  })

  it('runs steps in the workspace, which persists between steps', async () => {
    const job = await prepare()
    expect(await step(job, { script: 'pwd; echo hi > f.txt' })).toEqual({
      code: 0,
      stdout: `${job.workspace}\n`,
      stderr: '',
    })
    expect((await step(job, { script: 'cat f.txt; echo "$GITHUB_WORKSPACE"' })).stdout).toBe(
      `hi\n${job.workspace}\n`,
    )
  })

  it('passes exit codes and keeps stdout and stderr apart', async () => {
    const job = await prepare()
    expect(await step(job, { script: 'echo out; echo err >&2; exit 3' })).toEqual({
      code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    })
  })

  it('layers env: job env, then step env, then GITHUB_WORKSPACE; values are passed verbatim', async () => {
    const job = await prepare({ A: 'job', B: 'job', TRICKY: 'it\'s $HOME `id` "q"' })
    const r = await step(job, {
      script: 'printf "%s|%s|%s|%s\\n" "$A" "$B" "$TRICKY" "$GITHUB_WORKSPACE"',
      env: { B: 'step', GITHUB_WORKSPACE: '/not/this' },
    })
    expect(r.stdout).toBe(`job|step|it's $HOME \`id\` "q"|${job.workspace}\n`)
  })

  it('runs in a relative working-directory under the workspace, or an absolute one', async () => {
    const job = await prepare()
    await step(job, { script: 'mkdir -p "sub dir/deeper"' })
    expect((await step(job, { script: 'pwd', workingDirectory: 'sub dir/deeper' })).stdout).toBe(
      `${job.workspace}/sub dir/deeper\n`,
    )
    expect((await step(job, { script: 'pwd', workingDirectory: '/' })).stdout).toBe('/\n')
    const missing = await step(job, { script: 'echo ran', workingDirectory: 'nope' })
    expect(missing.code).not.toBe(0)
    expect(missing.stdout).toBe('')
  })

  it('shell: bash fails a pipeline that fails (pipefail); the default does not', async () => {
    const job = await prepare()
    const script = 'false | true; echo after'
    expect(await step(job, { script, shell: 'bash' })).toMatchObject({ code: 1, stdout: '' })
    expect(await step(job, { script, shell: null })).toMatchObject({ code: 0, stdout: 'after\n' })
    expect(await step(job, { script, shell: 'sh' })).toMatchObject({ code: 0, stdout: 'after\n' })
  })

  it('every shell stops at the first failing command (-e)', async () => {
    const job = await prepare()
    for (const shell of ['bash', 'sh', null] as const) {
      expect(await step(job, { script: 'echo one; false; echo two', shell })).toMatchObject({
        code: 1,
        stdout: 'one\n',
      })
    }
  })

  it('runs scripts with quotes, newlines and dollars untouched', async () => {
    const job = await prepare()
    const script = `x='single "double" $notexpanded'\necho "$x"\necho "it's" \\\n  continued`
    expect((await step(job, { script })).stdout).toBe(`single "double" $notexpanded\nit's continued\n`)
  })

  it('an abort kills a long step quickly and resolves null', async () => {
    const job = await prepare()
    const ac = new AbortController()
    const started = Date.now()
    setTimeout(() => ac.abort(), 100)
    const r = await step(job, { script: 'sleep 30' }, ac.signal)
    expect(r.code).toBeNull()
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('dispose removes the workspace, and a second dispose does not throw', async () => {
    const job = await prepare()
    writeFileSync(`${job.workspace}/file`, 'x')
    await job.dispose()
    expect(existsSync(job.workspace)).toBe(false)
    await expect(job.dispose()).resolves.toBeUndefined()
  })

  it('fails prepare with a clear message when the workspace cannot be made', async () => {
    const failing: CommandRunner = { run: () => Promise.resolve(1) }
    await expect(
      new ShellExecutor(failing).prepare(
        { instance: 'i', runId: 1, jobKey: 'a', image: null, env: {} },
        () => {},
        new AbortController().signal,
      ),
    ).rejects.toThrow('could not create a workspace on the node (mktemp exited 1)')
  })

  it('does not make a workspace for an aborted job', async () => {
    const ac = new AbortController()
    ac.abort()
    await expect(
      new ShellExecutor(new LocalCommandRunner()).prepare(
        { instance: 'i', runId: 1, jobKey: 'a', image: null, env: {} },
        () => {},
        ac.signal,
      ),
    ).rejects.toThrow('could not create a workspace on the node (mktemp exited null)')
  })

  it('dispose never throws, even when the node is gone', async () => {
    let calls = 0
    const flaky: CommandRunner = {
      run: (command, onOutput) => {
        calls++
        if (command.includes('mktemp')) {
          onOutput('stdout', Buffer.from('/tmp/ws\n'))
          return Promise.resolve(0)
        }
        return Promise.reject(new Error('connection lost'))
      },
    }
    const job = await new ShellExecutor(flaky).prepare(
      { instance: 'i', runId: 1, jobKey: 'a', image: null, env: {} },
      () => {},
      new AbortController().signal,
    )
    expect(job.workspace).toBe('/tmp/ws/work')
    expect(job.temp).toBe('/tmp/ws/temp')
    await expect(job.dispose()).resolves.toBeUndefined()
    expect(calls).toBe(2)
  })

  it('sends one command line per step that a POSIX shell can run', async () => {
    const lines: string[] = []
    const recorder: CommandRunner = {
      run: (command, onOutput) => {
        lines.push(command)
        if (command.includes('mktemp')) onOutput('stdout', Buffer.from('/tmp/ws x\n'))
        return Promise.resolve(0)
      },
    }
    const job = await new ShellExecutor(recorder).prepare(
      { instance: 'i', runId: 1, jobKey: 'a', image: null, env: { K: 'v' } },
      () => {},
      new AbortController().signal,
    )
    await job.runStep(
      { script: 'make', shell: 'sh', env: {}, workingDirectory: null },
      () => {},
      new AbortController().signal,
    )
    expect(lines[0]).toBe(
      'd=$(mktemp -d "${TMPDIR:-/tmp}/yardmaster-1-a-XXXXXX") && mkdir "$d/work" "$d/temp" && echo "$d"',
    )
    expect(lines[1]).toBe(
      "cd '/tmp/ws x/work' && exec env K=v 'GITHUB_WORKSPACE=/tmp/ws x/work' sh -e -c make",
    )
    await job.dispose()
    expect(lines[2]).toBe("rm -rf '/tmp/ws x'")
  })
})
