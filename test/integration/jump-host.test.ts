/**
 * Jump hosts on the lab: n2 reached through n1's SSH connection (n1's sshd has
 * AllowTcpForwarding yes).
 *
 * How the test knows the traffic went through n1: the lab's `fault.sh unreachable n2` cannot tell
 * (its rule, `INPUT -d 127.0.0.12 --dport 2222 -j DROP`, has no source: n1's sshd dials n2 over
 * loopback too, so the forwarded connection is dropped like a direct one), and n1's sshd does not
 * log forwardings at LogLevel VERBOSE. So the test asks n2 which TCP connection it is serving
 * (`$SSH_CONNECTION`: source port) and asks the kernel (`ss -tnp`) which process owns that
 * connection's client end: it must be a child of n1's sshd, not this test process.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSessions } from '../../src/main/core/executor/node-sessions'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { Farm, FarmNode } from '../../src/main/core/farm/farm-model'
import { runCollect } from '../../src/main/core/farm/node-handle'
import { probeNode } from '../../src/main/core/farm/node-probe'
import { SshPool } from '../../src/main/core/transport/ssh-pool'
import type { NodeStatusView } from '../../src/shared/model'
import { cli, tempDir } from '../support/cli'
import { host, lab } from '../support/lab'

/** The lab's farm file with `edit` applied, in a temp dir. */
function labFarmWith(edit: (text: string) => string): string {
  const file = join(tempDir('ym-jump-'), 'farm.yml')
  writeFileSync(file, edit(readFileSync(lab().farmFile, 'utf8')))
  return file
}

/** `jump: <via>` added to the node `name` of the lab's farm file. */
const withJump = (name: string, via: string) => (text: string) =>
  text.replace(new RegExp(`(- name: ${name}\\n(?:    .*\\n)*?)(    defaultImage:)`), `$1    jump: ${via}\n$2`)

/** The pid owning the client end of the TCP connection 127.0.0.1:<port> -> <addr>:2222. */
function ownerOfConnection(srcPort: number, dst: string): number {
  const out = execFileSync(
    'ss',
    ['-tnpH', 'state', 'established', 'src', `127.0.0.1:${srcPort}`, 'dst', `${dst}:2222`],
    {
      encoding: 'utf8',
    },
  )
  const m = /pid=(\d+)/.exec(out)
  if (!m)
    throw new Error(
      `no process owns 127.0.0.1:${srcPort} -> ${dst}:2222 (ss printed: ${out.trim() || 'nothing'})`,
    )
  return Number(m[1])
}

function ancestors(pid: number): number[] {
  const out: number[] = []
  for (let p = pid; p > 1;) {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ")".
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    out.push(p)
  }
  return out
}

let farm: Farm
let sessions: NodeSessions
const node = (name: string): FarmNode => farm.nodes.find((n) => n.name === name)!

beforeAll(() => {
  farm = loadFarmFile(labFarmWith(withJump('n2', 'n1')))
  sessions = new NodeSessions(farm)
})
afterAll(() => sessions.closeAll())

describe('jump hosts', () => {
  it('reaches n2 through n1: the TCP connection to n2 belongs to n1’s sshd, not to us', async () => {
    expect(node('n2').jump).toBe('n1')
    const n2 = await sessions.open(node('n2'))
    // It is n2 indeed (its own engine, with its labels), with its host key checked.
    const facts = await probeNode(n2)
    expect(facts.problems).toEqual([])
    expect(facts.engine!.labels).toEqual(host('n2').engineLabels)

    const r = await runCollect(n2.commands, 'echo "$SSH_CONNECTION"', AbortSignal.timeout(10_000))
    const [srcAddr, srcPort, dstAddr, dstPort] = r.stdout.trim().split(' ')
    expect([srcAddr, dstAddr, dstPort]).toEqual(['127.0.0.1', '127.0.0.12', '2222'])
    const owner = ownerOfConnection(Number(srcPort), '127.0.0.12')
    expect(owner).not.toBe(process.pid)
    const n1Sshd = Number(readFileSync(host('n1').sshdPidFile, 'utf8').trim())
    expect(ancestors(owner)).toContain(n1Sshd)
    // And nothing of ours talks to n2 directly.
    const direct = execFileSync('ss', ['-tnpH', 'state', 'established', 'dst', '127.0.0.12:2222'], {
      encoding: 'utf8',
    })
    expect(direct).not.toContain(`pid=${process.pid},`)
  })

  it('lists the jumped node in `nodes` and times a fresh connection through the jump host', async () => {
    const file = labFarmWith((t) => withJump('n3', 'n2')(withJump('n2', 'n1')(t)))
    const res = await cli(['nodes', '--farm', file, '--json'])
    expect(res.err).toBe('')
    expect(res.code).toBe(0)
    const statuses = JSON.parse(res.out) as NodeStatusView[]
    // n3 behind n2 behind n1: a chain of two jumps.
    for (const s of statuses) {
      expect(s.reachable).toBe(true)
      expect(s.facts!.engine!.labels).toEqual(host(s.name).engineLabels)
    }
    const test = await cli(['node', 'n3', 'test', '--farm', file])
    expect(test.err).toBe('')
    expect(test.code).toBe(0)
    expect(test.out).toMatch(/^n3 \(yardlab@127\.0\.0\.13:2222 via n2\): reachable$/m)
    expect(test.out).toMatch(/SSH handshake +[\d.]+ ms/)
  })

  it('gives the jump host back once a tunnel through it closes (a long-lived console keeps none)', async () => {
    const pool = new SshPool()
    const own = new NodeSessions(farm, { pool })
    try {
      const via = own.target(node('n2')).via!
      const tunnel = (await own.tunnel(node('n2')))!
      expect(pool.stateOf(via).kind).toBe('connected')
      // As an SSH client on it does when done: reads to the end (n2's banner here) and closes.
      tunnel.resume()
      tunnel.destroy()
      // Nobody holds n1's link any more: the pool hangs it up (idleMs 0).
      const end = Date.now() + 5000
      while (pool.stateOf(via).kind === 'connected' && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50))
      expect(pool.stateOf(via).kind).toBe('idle')
    } finally {
      await own.closeAll()
      pool.closeAll()
    }
  })

  it('says so when the jump host cannot be reached, and which one', async () => {
    // n1 declared on a port where nothing listens: n2 behind it cannot be reached either.
    const file = labFarmWith((t) =>
      withJump('n2', 'n1')(t.replace(/(host: 127\.0\.0\.11\n\s+port:) 2222/, '$1 2299')),
    )
    const res = await cli(['node', 'n2', 'images', '--farm', file])
    expect(res.code).toBe(1)
    expect(res.err).toContain(
      'cannot reach node n2 (yardlab@127.0.0.12:2222 via n1): its jump host n1 cannot be reached: ' +
        'cannot reach node n1 (yardlab@127.0.0.11:2299): connection refused',
    )
  })

  it('says so when the jump host cannot open the connection onwards', async () => {
    // n2 declared on a port where nothing listens on n2: n1 connects, but its sshd's dial fails.
    const file = labFarmWith((t) =>
      withJump('n2', 'n1')(t.replace(/(host: 127\.0\.0\.12\n\s+port:) 2222/, '$1 2299')),
    )
    const res = await cli(['node', 'n2', 'images', '--farm', file])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(
      /cannot reach node n2 \(yardlab@127\.0\.0\.12:2299 via n1\): the jump host n1 could not open a connection to 127\.0\.0\.12:2299: .*refused/i,
    )
  })
})
