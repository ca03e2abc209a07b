/**
 * Trust on first use against real sshds: an unknown host is refused with its fingerprint,
 * `node <name> trust` records it, and a changed key is refused even for a host trusted before.
 *
 * The lab's host keys are kept across `up`, so a changed key needs a host of our own: a spare
 * sshd started by this file on 127.0.0.14:2222 (the lab uses .11-.13), with the lab's settings
 * and n1's engine, first with one host key, then restarted with another on the same address.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/main/core/transport/known-hosts'
import type { NodeStatusView } from '../../src/shared/model'
import { cli, tempDir } from '../support/cli'
import { host, lab } from '../support/lab'

const SPARE = '127.0.0.14'

function fingerprintOfPub(file: string): string {
  const b64 = readFileSync(file, 'utf8').trim().split(/\s+/)[1]!
  return fingerprint(Buffer.from(b64, 'base64'))
}

/** The lab's farm file, with an empty known_hosts: every host is unknown but to the data dir's store. */
function untrustedFarm(dir: string, extra = ''): string {
  const kh = join(dir, 'empty_known_hosts')
  writeFileSync(kh, '')
  const file = join(dir, 'farm.yml')
  const text = readFileSync(lab().farmFile, 'utf8').replace(/^knownHosts: .*$/m, `knownHosts: ${kh}`)
  writeFileSync(file, text + extra)
  return file
}

const spareNode = `  - name: spare
    host: ${SPARE}
    port: 2222
    user: yardlab
    identityFile: ${lab().identityFile}
    executor: docker
    labels: [linux]
`

/** A throwaway sshd like the lab's n1 but on SPARE, with a host key of its own. */
class SpareSshd {
  private proc: ChildProcess | null = null
  constructor(private readonly dir: string) {}

  /** Starts with a new host key; returns its public key file. */
  async start(keyName: string): Promise<string> {
    const key = join(this.dir, keyName)
    if (!existsSync(key))
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', keyName, '-f', key])
    const config = join(this.dir, `sshd_config.${keyName}`)
    const n1 = readFileSync(join(lab().dir, 'hosts', 'n1', 'sshd_config'), 'utf8')
    writeFileSync(
      config,
      n1
        .replace(/^ListenAddress .*$/m, `ListenAddress ${SPARE}:2222`)
        .replace(/^HostKey .*$/m, `HostKey ${key}`)
        .replace(/^PidFile .*$/m, `PidFile ${join(this.dir, 'sshd.pid')}`),
    )
    // -D: in the foreground, so this process owns it and stops it by its pid.
    this.proc = spawn('/usr/sbin/sshd', ['-D', '-f', config, '-E', join(this.dir, 'sshd.log')], {
      stdio: 'ignore',
    })
    const deadline = Date.now() + 10_000
    while (!(await listening(SPARE, 2222))) {
      if (Date.now() > deadline)
        throw new Error(`spare sshd did not listen: ${readFileSync(join(this.dir, 'sshd.log'), 'utf8')}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    return `${key}.pub`
  }

  async stop(): Promise<void> {
    const p = this.proc
    this.proc = null
    if (!p || p.exitCode !== null) return
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve())
      p.kill('SIGTERM')
    })
    const deadline = Date.now() + 5_000
    while ((await listening(SPARE, 2222)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
  }
}

function listening(addr: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: addr, port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

describe('trust on first use', () => {
  it('refuses unknown hosts with their fingerprint, trusts one once confirmed, the others with --accept-new-host-keys', async () => {
    const dir = tempDir('ym-tofu-')
    const farm = untrustedFarm(dir)
    const dataDir = join(dir, 'data')
    const store = join(dataDir, 'known_hosts')
    const fp = (name: string) => fingerprintOfPub(host(name).hostKeyPub)

    const before = await cli(['nodes', '--farm', farm, '--data-dir', dataDir])
    expect(before.code).toBe(1)
    for (const name of ['n1', 'n2', 'n3']) {
      expect(before.out).toContain(
        `${name}: unreachable: node ${name} (yardlab@${host(name).address}:2222) is not a known host: ` +
          `it offered the ssh-ed25519 key ${fp(name)}`,
      )
      expect(before.out).toContain(`then trust it: \`yardmaster node ${name} trust\``)
    }
    expect(existsSync(store)).toBe(false)

    // No terminal and no --yes: shown, not recorded.
    const asked = await cli(['node', 'n1', 'trust', '--farm', farm, '--data-dir', dataDir])
    expect(asked.code).toBe(1)
    expect(asked.out).toContain(
      `n1 (yardlab@127.0.0.11:2222) offers this host key:\n  ssh-ed25519 ${fp('n1')}\n`,
    )
    expect(asked.err).toContain('not recorded: confirm with --yes')
    expect(existsSync(store)).toBe(false)

    const yes = await cli(['node', 'n1', 'trust', '--yes', '--farm', farm, '--data-dir', dataDir, '--json'])
    expect(yes.code).toBe(0)
    expect(JSON.parse(yes.out)).toEqual({
      node: 'n1',
      keyType: 'ssh-ed25519',
      fingerprint: fp('n1'),
      verdict: 'unknown',
      recorded: true,
      file: store,
    })
    expect(readFileSync(store, 'utf8')).toBe(
      `[127.0.0.11]:2222 ${readFileSync(host('n1').hostKeyPub, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')}\n`,
    )
    const again = await cli(['node', 'n1', 'trust', '--farm', farm, '--data-dir', dataDir])
    expect(again.code).toBe(0)
    expect(again.out).toContain(`its host key ssh-ed25519 ${fp('n1')} is already trusted (${store}:1)`)

    // n1 works now; the others are still refused.
    const some = JSON.parse(
      (await cli(['nodes', '--farm', farm, '--data-dir', dataDir, '--json'])).out,
    ) as NodeStatusView[]
    expect(some.map((s) => [s.name, s.reachable])).toEqual([
      ['n1', true],
      ['n2', false],
      ['n3', false],
    ])

    const all = await cli(['nodes', '--farm', farm, '--data-dir', dataDir, '--accept-new-host-keys'])
    expect(all.code).toBe(0)
    expect(
      readFileSync(store, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0])
        .sort(),
    ).toEqual(['[127.0.0.11]:2222', '[127.0.0.12]:2222', '[127.0.0.13]:2222'])
    // And without the flag from then on.
    expect((await cli(['nodes', '--farm', farm, '--data-dir', dataDir])).code).toBe(0)
  })

  describe('a host whose key changes', () => {
    let dir: string
    let sshd: SpareSshd
    beforeAll(() => {
      dir = tempDir('ym-rekey-')
      sshd = new SpareSshd(dir)
    })
    afterAll(() => sshd.stop())

    it('is refused, even though it was trusted before, and its record is kept', async () => {
      const farm = untrustedFarm(dir, spareNode)
      const dataDir = join(dir, 'data')
      const store = join(dataDir, 'known_hosts')
      const first = await sshd.start('key-a')
      const trusted = await cli(['node', 'spare', 'trust', '--yes', '--farm', farm, '--data-dir', dataDir])
      expect(trusted.err).toBe('')
      expect(trusted.code).toBe(0)
      const test = await cli(['node', 'spare', 'test', '--farm', farm, '--data-dir', dataDir])
      expect(test.code).toBe(0)
      expect(test.out).toContain('spare (yardlab@127.0.0.14:2222): reachable')
      const recorded = readFileSync(store, 'utf8')

      // The machine is "reinstalled": same address, new host key.
      await sshd.stop()
      const second = await sshd.start('key-b')
      const changed =
        `the host key of node spare (yardlab@127.0.0.14:2222) has CHANGED: it now offers the ssh-ed25519 key ${fingerprintOfPub(second)}, ` +
        `but ${store}:1 holds ${fingerprintOfPub(first)} for [127.0.0.14]:2222. The connection was refused and nothing was recorded.`

      const refused = await cli(['node', 'spare', 'test', '--farm', farm, '--data-dir', dataDir])
      expect(refused.code).toBe(1)
      expect(refused.err).toContain(changed)
      expect(refused.err).toContain(`ssh-keygen -R '[127.0.0.14]:2222' -f ${store}`)

      // Accepting new keys does not accept changed ones, and trust refuses to overwrite.
      const accept = await cli([
        'node',
        'spare',
        'images',
        '--farm',
        farm,
        '--data-dir',
        dataDir,
        '--accept-new-host-keys',
      ])
      expect(accept.code).toBe(1)
      expect(accept.err).toContain(changed)
      const retrust = await cli(['node', 'spare', 'trust', '--yes', '--farm', farm, '--data-dir', dataDir])
      expect(retrust.code).toBe(1)
      expect(retrust.err).toContain(changed)
      expect(readFileSync(store, 'utf8')).toBe(recorded)
    })
  })
})
