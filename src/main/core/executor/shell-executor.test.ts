import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import type { CommandRunner } from './command-runner'
import { LocalCommandRunner } from './command-runner'
import type { JobEnvironment, StepCommand } from './job-environment'
import { ShellExecutor } from './shell-executor'

const live: JobEnvironment[] = []
afterEach(async () => {
  for (const env of live.splice(0)) await env.dispose()
})

async function prepare(jobKey = 'build', graceMs = 0, runner: CommandRunner = new LocalCommandRunner()) {
  const job = await new ShellExecutor(runner).prepare(
    { instance: 'test-instance', runId: 7, jobKey, image: 'ignored:latest', graceMs },
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
    const a = await prepare('build/linux x64')
    const b = await prepare('build/linux x64')
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

  it('gives the step its env verbatim, with GITHUB_WORKSPACE set to the workspace', async () => {
    const job = await prepare()
    const r = await step(job, {
      script: 'printf "%s|%s|%s\\n" "$A" "$TRICKY" "$GITHUB_WORKSPACE"',
      env: { A: 'a', TRICKY: 'it\'s $HOME `id` "q"', GITHUB_WORKSPACE: '/not/this' },
    })
    expect(r.stdout).toBe(`a|it's $HOME \`id\` "q"|${job.workspace}\n`)
  })

  it('says which env names a shell cannot carry, and runs the step without them', async () => {
    const job = await prepare()
    const r = await step(job, { script: 'echo "$OK"', env: { OK: 'yes', 'my-var': 'x' } })
    expect(r).toEqual({
      code: 0,
      stdout: 'yes\n',
      stderr:
        'yardmaster: a shell node cannot pass "my-var" to the step (not a shell variable name); ' +
        'rename it, or run the job on a docker node\n',
    })
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
    await expect(job.dispose()).resolves.toBe(true)
  })

  it('fails prepare with a clear message when the workspace cannot be made', async () => {
    const failing: CommandRunner = { run: () => Promise.resolve(1) }
    await expect(
      new ShellExecutor(failing).prepare(
        { instance: 'i', runId: 1, jobKey: 'a', image: null },
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
        { instance: 'i', runId: 1, jobKey: 'a', image: null },
        () => {},
        ac.signal,
      ),
    ).rejects.toThrow('could not create a workspace on the node (mktemp exited null)')
  })

  it('dispose never throws, even when the node is gone: it says something may be left', async () => {
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
      { instance: 'i', runId: 1, jobKey: 'a', image: null },
      () => {},
      new AbortController().signal,
    )
    expect(job.workspace).toBe('/tmp/ws/work')
    expect(job.temp).toBe('/tmp/ws/temp')
    await expect(job.dispose()).resolves.toBe(false)
    expect(calls).toBe(2)
  })

  it('sends the script and env over standard input, never on the command line', async () => {
    const sent: Array<{ command: string; input?: string }> = []
    const recorder: CommandRunner = {
      run: (command, onOutput, _signal, input) => {
        sent.push({ command, input })
        if (command.includes('mktemp')) onOutput('stdout', Buffer.from('/tmp/ws x\n'))
        return Promise.resolve(0)
      },
    }
    const job = await new ShellExecutor(recorder).prepare(
      { instance: 'i', runId: 1, jobKey: 'a', image: null },
      () => {},
      new AbortController().signal,
    )
    await job.runStep(
      { script: 'deploy --token "$TOKEN"', shell: 'sh', env: { TOKEN: 's3cr3t' }, workingDirectory: null },
      () => {},
      new AbortController().signal,
    )
    expect(sent[0]!.command).toBe(
      'd=$(mktemp -d "${TMPDIR:-/tmp}/yardmaster-1-a-XXXXXX") && mkdir "$d/work" "$d/temp" && echo "$d"',
    )
    const { command, input } = sent[1]!
    expect(command).toMatch(
      /^\(umask 077 && mkdir -p '\/tmp\/ws x\/temp\/_steps\/[0-9a-f]{16}' && cat > '[^']+\/launch\.sh'\) && exec sh '[^']+\/launch\.sh' <\/dev\/null$/,
    )
    expect(command).not.toContain('s3cr3t')
    expect(command).not.toContain('deploy')
    expect(input).toContain('export TOKEN=s3cr3t')
    expect(input).toContain('deploy --token "$TOKEN"')
    await job.dispose()
    expect(sent[2]!.command).toBe("rm -rf '/tmp/ws x'")
  })
})

/** Whether a process still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('ShellExecutor: stopping a step', () => {
  const started = async (job: JobEnvironment, file: string) => {
    for (let i = 0; i < 1000 && !existsSync(`${job.workspace}/${file}`); i++)
      await new Promise((r) => setTimeout(r, 10))
    if (!existsSync(`${job.workspace}/${file}`)) throw new Error(`the step never made ${file}`)
  }

  it('sends SIGTERM to the whole step first, so it may clean up, within the grace period', async () => {
    const job = await prepare('term', 60_000)
    const abort = new AbortController()
    // The step's child (sleep in the background) is in the group too: it must go as well.
    const run = step(
      job,
      {
        script: "trap 'echo cleaning up; exit 3' TERM; sleep 30 & echo $! > child; touch ready; wait",
      },
      abort.signal,
    )
    await started(job, 'ready')
    abort.abort()
    const r = await run
    expect(r.code).toBeNull()
    expect(r.stdout).toContain('cleaning up')
    const child = Number((await step(job, { script: 'cat child' })).stdout)
    // (Once its parent is gone, init reaps it: until then it answers as a zombie.)
    for (let i = 0; i < 100 && alive(child); i++) await new Promise((res) => setTimeout(res, 20))
    expect(alive(child)).toBe(false)
  })

  it('kills what outlives its launcher once the grace period is over, as over SSH', async () => {
    // Like an SSH channel: giving a command up does not signal its process group, so only the
    // executor's own SIGKILL to the group (remembered from the SIGTERM) can end what lives on.
    const local = new LocalCommandRunner()
    const sshLike: CommandRunner = {
      run: (command, onOutput, signal, input) =>
        new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => resolve(null), { once: true })
          local.run(command, onOutput, new AbortController().signal, input).then(resolve, reject)
        }),
    }
    const job = await prepare('outlives', 200, sshLike)
    const abort = new AbortController()
    const run = step(
      job,
      { script: "trap 'exit 0' TERM; (trap '' TERM; sleep 30) & echo $! > child; touch ready; wait" },
      abort.signal,
    )
    await started(job, 'ready')
    abort.abort()
    expect((await run).code).toBeNull()
    const child = Number((await step(job, { script: 'cat child' })).stdout)
    for (let i = 0; i < 250 && alive(child); i++) await new Promise((res) => setTimeout(res, 20))
    expect(alive(child)).toBe(false)
  }, 20_000)

  it('kills what ignores SIGTERM once the grace period is over, its children included', async () => {
    const job = await prepare('kill', 200)
    const abort = new AbortController()
    const run = step(
      job,
      { script: "trap '' TERM; sleep 30 & echo $! > child; touch ready; wait; echo never" },
      abort.signal,
    )
    await started(job, 'ready')
    abort.abort()
    const r = await run
    expect(r.code).toBeNull()
    expect(r.stdout).not.toContain('never')
    const child = Number((await step(job, { script: 'cat child' })).stdout)
    for (let i = 0; i < 100 && alive(child); i++) await new Promise((res) => setTimeout(res, 20))
    expect(alive(child)).toBe(false)
  })
})

describe('ShellExecutor.fence', () => {
  it("stops what a cut-off attempt still runs and removes its workspace; by the job's name when no ref was recorded", async () => {
    // Like a dropped SSH connection: the command is given up, its processes run on.
    const local = new LocalCommandRunner()
    let drop: (e: Error) => void = () => {}
    const cut: CommandRunner = {
      run: (command, onOutput, signal, input) =>
        command.includes('launch.sh')
          ? new Promise((_resolve, reject) => {
              drop = reject
              void local.run(command, onOutput, new AbortController().signal, input)
            })
          : local.run(command, onOutput, signal, input),
    }
    const executor = new ShellExecutor(cut)
    const prepared = async (jobKey: string) => {
      const job = await executor.prepare(
        { instance: 'i', runId: 99, jobKey, image: null },
        () => {},
        new AbortController().signal,
      )
      const run = step(job, { script: 'sleep 30 & echo $! > child; touch ready; wait' })
      for (let i = 0; i < 1000 && !existsSync(`${job.workspace}/ready`); i++)
        await new Promise((r) => setTimeout(r, 10))
      drop(new Error('channel closed'))
      await expect(run).rejects.toThrow('channel closed')
      const child = Number(readFileSync(`${job.workspace}/child`, 'utf8'))
      expect(alive(child)).toBe(true)
      return { job, child }
    }
    for (const byRef of [true, false]) {
      const { job, child } = await prepared(byRef ? 'fence-ref' : 'fence-name')
      await executor.fence(
        {
          instance: 'i',
          runId: 99,
          jobKey: byRef ? 'fence-ref' : 'fence-name',
          attempt: 1,
          ref: byRef ? job.ref : null,
        },
        new AbortController().signal,
      )
      for (let i = 0; i < 100 && alive(child); i++) await new Promise((res) => setTimeout(res, 20))
      expect(alive(child)).toBe(false)
      expect(existsSync(job.ref)).toBe(false)
    }
  }, 20_000)
})
