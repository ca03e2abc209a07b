/**
 * Bad input gets a clear error that says where and what to do, and leaves no half-written run.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DB_FILE, openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir } from '../support/cli'
import { fault, host, lab, REPO } from '../support/lab'

const ok = join(REPO, 'test', 'fixtures', 'lab', 'two-hosts.yml')

describe('bad input', () => {
  let dir: string
  let dataDir: string
  beforeAll(() => lab())

  const write = (name: string, text: string) => {
    const p = join(dir, name)
    writeFileSync(p, text)
    return p
  }
  const runCount = () => {
    if (!existsSync(join(dataDir, DB_FILE))) return 0
    const db = openDatabase(dataDir)
    try {
      return new RunStore(db).listRuns(1000).length
    } finally {
      db.close()
    }
  }
  const labFarmWith = (edit: (farm: string) => string) =>
    write('farm.yml', edit(readFileSync(lab().farmFile, 'utf8')))

  beforeEach(() => {
    dir = tempDir()
    dataDir = join(dir, 'data')
  })

  it('a malformed workflow: exit 2, file:line:col, nothing recorded', async () => {
    const wf = write(
      'broken.yml',
      'on: push\nname: broken\njobs:\n  a:\n    runs-on: gpu\n    steps:\n      - run: echo hi\n     bad: indent\n',
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(new RegExp(`${wf}:8:\\d+: `))
    expect(runCount()).toBe(0)
  })

  it('an unknown needs: exit 2 with the position and a suggestion', async () => {
    const wf = write(
      'needs.yml',
      'on: push\njobs:\n  build:\n    runs-on: gpu\n    steps:\n      - run: "true"\n  test:\n    runs-on: gpu\n    needs: biuld\n    steps:\n      - run: "true"\n',
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toContain(
      `${wf}:9:12: job "test" needs unknown job "biuld"; did you mean "build"? (jobs.test.needs)`,
    )
    expect(runCount()).toBe(0)
  })

  it('an invalid farm file: exit 2 with the position of the field', async () => {
    const farm = labFarmWith((f) => f.replace('executor: docker', 'executor: dokcer'))
    const res = await cli(['run', ok, '--farm', farm, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(
      new RegExp(
        `${farm}:\\d+:15: executor "dokcer" is unknown; use docker or shell \\(did you mean "docker"\\?\\)`,
      ),
    )
    expect(runCount()).toBe(0)
  })

  it('a job no node can take: exit 2 naming what each node lacks', async () => {
    const wf = write(
      'nomatch.yml',
      'on: push\njobs:\n  a:\n    runs-on: [gpu, arm64]\n    steps:\n      - run: "true"\n',
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toContain(`${wf}:3:3: job "a" cannot run on this farm`)
    // (Declared labels leave no node, so the farm is probed: labels include what each node is.)
    expect(res.err).toMatch(/n2 \[self-hosted, linux, gpu[^\]]*\] lacks label arm64/)
    expect(res.err).toMatch(/n3 \[self-hosted, linux, arm64[^\]]*\] lacks label gpu/)
    expect(runCount()).toBe(0)
  })

  it('a farm pointing at a host where nothing listens: exit 2, connection refused, nothing recorded', async () => {
    const farm = labFarmWith((f) => f.replace(/host: 127\.0\.0\.12/, 'host: 127.0.0.99'))
    const res = await cli(['run', ok, '--farm', farm, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toContain('cannot reach node n2 (yardlab@127.0.0.99:2222): connection refused')
    expect(res.err).toContain('the run did not start, nothing was recorded')
    expect(runCount()).toBe(0)
  })

  it('a host whose traffic is dropped: exit 2 after the connect timeout, nothing recorded', async () => {
    fault('unreachable', 'n3')
    try {
      const res = await cli(['run', ok, '--farm', lab().farmFile, '--data-dir', dataDir])
      expect(res.code).toBe(2)
      expect(res.err).toMatch(
        /cannot reach node n3 \(yardlab@127\.0\.0\.13:2222\): (no SSH handshake within the time limit|the connection timed out)/,
      )
      expect(runCount()).toBe(0)
    } finally {
      fault('heal', 'n3')
    }
  }, 30_000)

  it('a host whose key does not match known_hosts: refused before any credential is sent', async () => {
    const n1Key = readFileSync(host('n1').hostKeyPub, 'utf8').split(' ').slice(0, 2).join(' ')
    const known = readFileSync(lab().knownHosts, 'utf8')
      .split('\n')
      .map((l) => (l.startsWith('[127.0.0.12]:2222 ') ? `[127.0.0.12]:2222 ${n1Key}` : l))
      .join('\n')
    const kh = write('known_hosts', known)
    const farm = labFarmWith((f) => f.replace(/^knownHosts: .*$/m, `knownHosts: ${kh}`))
    const sshdLog = join(lab().dir, 'hosts', 'n2', 'sshd.log')
    const before = readFileSync(sshdLog, 'utf8').length
    const res = await cli(['run', ok, '--farm', farm, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    const fp = execFileSync('ssh-keygen', ['-lf', host('n2').hostKeyPub])
      .toString()
      .split(' ')[1]
    expect(res.err).toContain(
      `the host key of node n2 (yardlab@127.0.0.12:2222) has CHANGED: it now offers the ssh-ed25519 key ${fp}, but ${kh}:2 holds`,
    )
    expect(res.err).toContain(`ssh-keygen -R '[127.0.0.12]:2222' -f ${kh}`)
    // sshd never saw an authentication attempt from us.
    expect(readFileSync(sshdLog, 'utf8').slice(before)).not.toMatch(/Accepted publickey|Failed publickey/)
    expect(runCount()).toBe(0)
  })

  it('an image the node lacks and cannot pull: the job fails saying how to get it there; the run is recorded as failed', async () => {
    const wf = write(
      'noimage.yml',
      'on: push\njobs:\n  a:\n    runs-on: gpu\n    container: lab/not-there:1\n    steps:\n      - run: echo hi\n',
    )
    const res = await cli(['run', wf, '--farm', lab().farmFile, '--data-dir', dataDir])
    expect(res.code).toBe(1)
    expect(res.out).toContain(
      'image lab/not-there:1 is not on node n2 (yardlab@127.0.0.12:2222) and could not be pulled',
    )
    expect(res.out).toContain('Load it there (docker save lab/not-there:1 | ssh <node> docker load)')
    const db = openDatabase(dataDir)
    try {
      const store = new RunStore(db)
      const { run, jobs } = store.getRun(store.listRuns(1)[0]!.id)
      expect(run.state).toBe('failed')
      expect(jobs[0]).toMatchObject({ state: 'failed', nodeName: 'n2' })
      expect(jobs[0]!.reason).toContain(
        'could not start the job on n2: image lab/not-there:1 is not on node n2',
      )
      expect(jobs[0]!.steps[0]!.state).toBe('skipped')
    } finally {
      db.close()
    }
  })

  it('a key the host does not accept: a clear authentication error', async () => {
    const key = join(dir, 'stranger')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    const farm = labFarmWith((f) => f.replaceAll(/identityFile: .*/g, `identityFile: ${key}`))
    const res = await cli(['run', ok, '--farm', farm, '--data-dir', dataDir])
    expect(res.code).toBe(2)
    expect(res.err).toContain(
      `authentication to node n2 (yardlab@127.0.0.12:2222) failed: the server refused the key. Check that the public key of ${key} is in ~yardlab/.ssh/authorized_keys`,
    )
    expect(runCount()).toBe(0)
  })
})
