import { EventEmitter } from 'node:events'
import type { Client } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { LocalCommandRunner, SshCommandRunner } from './command-runner'

const runner = new LocalCommandRunner()

async function run(command: string, signal = new AbortController().signal) {
  let stdout = ''
  let stderr = ''
  const code = await runner.run(
    command,
    (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk.toString()
      else stderr += chunk.toString()
    },
    signal,
  )
  return { code, stdout, stderr }
}

describe('LocalCommandRunner', () => {
  it('resolves with the exit code', async () => {
    expect((await run('true')).code).toBe(0)
    expect((await run('exit 7')).code).toBe(7)
  })

  it('keeps stdout and stderr apart', async () => {
    expect(await run('echo out; echo err >&2; echo out2')).toEqual({
      code: 0,
      stdout: 'out\nout2\n',
      stderr: 'err\n',
    })
  })

  it('runs the line with /bin/sh -c', async () => {
    expect((await run('echo "$0"')).stdout).toBe('/bin/sh\n')
  })

  it('does not start when already aborted', async () => {
    const ac = new AbortController()
    ac.abort()
    expect(await run('echo should-not-run', ac.signal)).toEqual({ code: null, stdout: '', stderr: '' })
  })

  it('kills a running command and its children quickly on abort, resolving null', async () => {
    const ac = new AbortController()
    const started = Date.now()
    const p = run('sleep 30 & sleep 30; echo never', ac.signal)
    setTimeout(() => ac.abort(), 100)
    const result = await p
    expect(result.code).toBeNull()
    expect(result.stdout).toBe('')
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('resolves null when the command dies of a signal it sent itself', async () => {
    expect((await run('kill -9 $$')).code).toBeNull()
  })

  it('hands the input to standard input, and ends it; without input, standard input is empty', async () => {
    let out = ''
    const code = await runner.run(
      'cat; echo "[$1]"',
      (stream, d) => stream === 'stdout' && (out += d.toString()),
      new AbortController().signal,
      "secret 'text'\n",
    )
    expect({ code, out }).toEqual({ code: 0, out: "secret 'text'\n[]\n" })
    expect((await run('cat; echo done')).stdout).toBe('done\n')
  })

  it('does not fail when the command exits without reading its input', async () => {
    const big = 'x'.repeat(1 << 20)
    expect(await runner.run('exit 3', () => {}, new AbortController().signal, big)).toBe(3)
  })
})

/** Just enough of an ssh2 exec channel: data on itself and on stderr, close with the exit code. */
class FakeChannel extends EventEmitter {
  readonly stderr = new EventEmitter()
  readonly signals: string[] = []
  closed = false
  /** What was written to the command's standard input before it ended; null while open. */
  stdin: string | null = null
  end(data: string): void {
    this.stdin = data
  }
  signal(name: string): void {
    this.signals.push(name)
  }
  close(): void {
    this.closed = true
    this.emit('close', null)
  }
}

function fakeClient(script: (channel: FakeChannel) => void, execError?: Error) {
  const commands: string[] = []
  const channels: FakeChannel[] = []
  const client = {
    exec(command: string, cb: (err: Error | undefined, channel: FakeChannel) => void) {
      commands.push(command)
      const channel = new FakeChannel()
      channels.push(channel)
      setImmediate(() => {
        cb(execError, channel)
        if (!execError) script(channel)
      })
    },
  }
  return { client: client as unknown as Client, commands, channels }
}

describe('SshCommandRunner (over a fake ssh2 client)', () => {
  async function run(runner: SshCommandRunner, signal = new AbortController().signal) {
    const out: string[] = []
    const code = await runner.run('make test', (stream, d) => out.push(`${stream}:${d.toString()}`), signal)
    return { code, out }
  }

  it('execs the command and resolves with the exit code, streams apart', async () => {
    const { client, commands } = fakeClient((ch) => {
      ch.emit('data', Buffer.from('out'))
      ch.stderr.emit('data', Buffer.from('err'))
      ch.emit('close', 4)
    })
    expect(await run(new SshCommandRunner(client))).toEqual({ code: 4, out: ['stdout:out', 'stderr:err'] })
    expect(commands).toEqual(['make test'])
  })

  it('writes the input to the channel and ends it (empty without input)', async () => {
    const { client, channels } = fakeClient((ch) => ch.emit('close', 0))
    await new SshCommandRunner(client).run('cat', () => {}, new AbortController().signal, 'the script')
    await run(new SshCommandRunner(client))
    expect(channels.map((c) => c.stdin)).toEqual(['the script', ''])
  })

  it('resolves null when a signal killed the command', async () => {
    const { client } = fakeClient((ch) => ch.emit('close', null, 'KILL'))
    expect((await run(new SshCommandRunner(client))).code).toBeNull()
  })

  it('rejects when the channel closes with neither an exit code nor a signal (the connection dropped)', async () => {
    const { client } = fakeClient((ch) => ch.emit('close'))
    await expect(run(new SshCommandRunner(client))).rejects.toThrow(
      'the SSH connection closed before the command ended',
    )
  })

  it('rejects when the exec cannot start', async () => {
    const { client } = fakeClient(() => {}, new Error('channel open failure'))
    await expect(run(new SshCommandRunner(client))).rejects.toThrow('channel open failure')
  })

  it('does not exec when already aborted', async () => {
    const { client, commands } = fakeClient(() => {})
    const ac = new AbortController()
    ac.abort()
    expect((await run(new SshCommandRunner(client), ac.signal)).code).toBeNull()
    expect(commands).toEqual([])
  })

  it('on abort sends KILL, closes the channel and resolves null', async () => {
    const ac = new AbortController()
    const { client, channels } = fakeClient(() => setTimeout(() => ac.abort(), 5))
    expect((await run(new SshCommandRunner(client), ac.signal)).code).toBeNull()
    expect(channels[0]!.signals).toEqual(['KILL'])
    expect(channels[0]!.closed).toBe(true)
  })

  it('answers an abort at once on a stalled connection, and kills a channel that opens later', async () => {
    let opened: ((err: Error | undefined, ch: FakeChannel) => void) | null = null
    const stalled = {
      exec: (_c: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => void (opened = cb),
    } as unknown as Client
    const ac = new AbortController()
    const running = run(new SshCommandRunner(stalled), ac.signal)
    ac.abort()
    expect((await running).code).toBeNull()
    const late = new FakeChannel()
    late.close = () => void (late.closed = true) // a stalled server never confirms
    opened!(undefined, late)
    expect(late.signals).toEqual(['KILL'])
    expect(late.closed).toBe(true)
  })

  it('answers an abort at once even when the server never confirms the close', async () => {
    const ac = new AbortController()
    const { client, channels } = fakeClient((ch) => {
      ch.close = () => void (ch.closed = true)
      setTimeout(() => ac.abort(), 5)
    })
    expect((await run(new SshCommandRunner(client), ac.signal)).code).toBeNull()
    expect(channels[0]!.closed).toBe(true)
  })
})
