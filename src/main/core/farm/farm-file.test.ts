import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatProblem, InvalidSourceError, type SourceProblem } from '../source/source-error'
import { describeNode, jumpChain } from './farm-model'
import {
  defaultKnownHosts,
  expandPath,
  loadFarmFile,
  normalizeLabels,
  parseFarm,
  withPlatforms,
} from './farm-file'

const FIXTURE = resolve(__dirname, '../../../../test/fixtures/farms/three-nodes.yml')

function problemsOf(text: string): SourceProblem[] {
  try {
    parseFarm('/farms/farm.yml', text)
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidSourceError)
    expect((e as InvalidSourceError).kind).toBe('farm')
    return (e as InvalidSourceError).problems
  }
  throw new Error('expected the farm to be rejected')
}

const where = (text: string) => problemsOf(text).map((p) => formatProblem({ ...p, file: '' }).slice(1))

describe('parseFarm: valid farms', () => {
  it('fills in defaults for an SSH node', () => {
    const farm = parseFarm('/farms/farm.yml', 'nodes:\n  - name: n1\n    host: 10.0.0.5\n    user: ci\n')
    expect(farm).toEqual({
      file: '/farms/farm.yml',
      knownHosts: join(homedir(), '.ssh', 'known_hosts'),
      platforms: {},
      nodes: [
        {
          name: 'n1',
          host: '10.0.0.5',
          port: 22,
          user: 'ci',
          identityFile: null,
          executor: 'docker',
          labels: ['self-hosted'],
          slots: 1,
          defaultImage: null,
          cpus: null,
          memoryBytes: null,
          jump: null,
          source: { file: '/farms/farm.yml', line: 2, col: 5 },
        },
      ],
    })
    expect(farm.knownHosts).toBe(defaultKnownHosts())
  })

  it('needs no user for host: local', () => {
    const farm = parseFarm('/f.yml', 'nodes:\n  - name: here\n    host: local\n    executor: shell\n')
    expect(farm.nodes[0]).toMatchObject({ name: 'here', host: 'local', user: '', executor: 'shell' })
  })

  it('lower-cases labels, adds self-hosted once, and drops duplicates', () => {
    const farm = parseFarm(
      '/f.yml',
      'nodes:\n  - name: n\n    host: local\n    labels: [Linux, GPU, linux, Self-Hosted]\n',
    )
    expect(farm.nodes[0]!.labels).toEqual(['self-hosted', 'linux', 'gpu'])
  })

  it('accepts a single label as a string', () => {
    const farm = parseFarm('/f.yml', 'nodes:\n  - name: n\n    host: local\n    labels: macOS\n')
    expect(farm.nodes[0]!.labels).toEqual(['self-hosted', 'macos'])
  })

  it('expands ~ and relative paths against the farm file directory', () => {
    const farm = parseFarm(
      '/srv/farms/farm.yml',
      'knownHosts: ../ssh/known_hosts\nnodes:\n  - name: a\n    host: h\n    user: u\n    identityFile: ~/.ssh/id_ed25519\n  - name: b\n    host: h\n    user: u\n    identityFile: keys/b\n  - name: c\n    host: h\n    user: u\n    identityFile: /etc/keys/c\n',
    )
    expect(farm.knownHosts).toBe('/srv/ssh/known_hosts')
    expect(farm.nodes.map((n) => n.identityFile)).toEqual([
      join(homedir(), '.ssh', 'id_ed25519'),
      '/srv/farms/keys/b',
      '/etc/keys/c',
    ])
  })

  it('loads a farm file from disk, resolving paths beside it', () => {
    const farm = loadFarmFile(FIXTURE)
    const dir = dirname(FIXTURE)
    expect(farm.file).toBe(FIXTURE)
    expect(farm.knownHosts).toBe(join(dir, 'known_hosts'))
    expect(farm.nodes.map((n) => [n.name, n.host, n.port, n.user, n.executor, n.slots])).toEqual([
      ['builder-1', '10.0.0.5', 22, 'ci', 'docker', 4],
      ['mac.signing', 'mac.lan', 2222, 'build', 'shell', 1],
      ['here', 'local', 22, '', 'shell', 1],
    ])
    expect(farm.nodes[0]).toMatchObject({
      identityFile: join(dir, 'keys', 'ci_ed25519'),
      labels: ['self-hosted', 'linux', 'x64', 'gpu'],
      defaultImage: 'debian:bookworm',
      source: { file: FIXTURE, line: 4, col: 5 },
    })
  })
})

describe('parseFarm: problems', () => {
  it('requires name and host, and user for SSH nodes', () => {
    expect(where('nodes:\n  - port: 22\n')).toEqual([
      '2:5: a node needs "name" (nodes[0].name)',
      '2:5: a node needs "host" (nodes[0].host)',
      '2:5: a node reached over SSH needs "user" (nodes[0].user)',
    ])
  })

  it('refuses ports that are not whole numbers from 1 to 65535', () => {
    expect(
      where(
        'nodes:\n  - name: a\n    host: h\n    user: u\n    port: 0\n  - name: b\n    host: h\n    user: u\n    port: 70000\n  - name: c\n    host: h\n    user: u\n    port: "22"\n  - name: d\n    host: h\n    user: u\n    port: 22.5\n',
      ),
    ).toEqual([
      '5:11: expected a whole number of at least 1, found number 0 (nodes[0].port)',
      '9:11: port 70000 is out of range (1-65535) (nodes[1].port)',
      '13:11: expected a whole number of at least 1, found string "22" (nodes[2].port)',
      '17:11: expected a whole number of at least 1, found number 22.5 (nodes[3].port)',
    ])
  })

  it('refuses labels with spaces or commas, empty ones, and image names with spaces, where they stand', () => {
    expect(
      where(
        'nodes:\n  - name: a\n    host: h\n    user: u\n    labels: [linux, "gpu cuda", ""]\n    defaultImage: "debian bookworm"\n  - name: b\n    host: h\n    user: u\n    labels: "linux,arm64"\n',
      ),
    ).toEqual([
      '5:21: label "gpu cuda" may not contain spaces or commas; give each label on its own (nodes[0].labels[1])',
      '5:33: a label cannot be empty (nodes[0].labels[2])',
      '6:19: an image name such as debian:bookworm has no spaces, not "debian bookworm" (nodes[0].defaultImage)',
      '10:13: label "linux,arm64" may not contain spaces or commas; give each label on its own (nodes[1].labels)',
    ])
  })

  it('accepts the edges of the port range', () => {
    const farm = parseFarm(
      '/f.yml',
      'nodes:\n  - name: a\n    host: h\n    user: u\n    port: 1\n  - name: b\n    host: h\n    user: u\n    port: 65535\n',
    )
    expect(farm.nodes.map((n) => n.port)).toEqual([1, 65535])
  })

  it('refuses slots below 1', () => {
    expect(where('nodes:\n  - name: a\n    host: local\n    slots: 0\n')).toEqual([
      '4:12: expected a whole number of at least 1, found number 0 (nodes[0].slots)',
    ])
  })

  it('refuses an unknown executor, suggesting the close one', () => {
    expect(
      where(
        'nodes:\n  - name: a\n    host: local\n    executor: dokcer\n  - name: b\n    host: local\n    executor: kubernetes\n',
      ),
    ).toEqual([
      '4:15: executor "dokcer" is unknown; use docker or shell (did you mean "docker"?) (nodes[0].executor)',
      '7:15: executor "kubernetes" is unknown; use docker or shell (nodes[1].executor)',
    ])
  })

  it('refuses unknown keys, suggesting the close one', () => {
    expect(
      where('knownhosts: x\nnodes:\n  - name: a\n    host: local\n    lables: [x]\n    ram: 4\n'),
    ).toEqual([
      '1:1: unknown key "knownhosts"; did you mean "knownHosts"? (knownhosts)',
      '5:5: unknown key "lables"; did you mean "labels"? (nodes[0].lables)',
      '6:5: unknown key "ram"; expected one of: name, host, port, user, identityFile, executor, labels, slots, defaultImage, cpus, memory, jump, health, allowedHostPaths (nodes[0].ram)',
    ])
  })

  it('refuses a node name used twice', () => {
    expect(where('nodes:\n  - name: a\n    host: local\n  - name: a\n    host: local\n')).toEqual([
      '4:11: node name "a" is used twice (nodes[1].name)',
    ])
  })

  it('refuses node names with odd characters', () => {
    expect(where('nodes:\n  - name: "bad name"\n    host: local\n')).toEqual([
      '2:11: node name "bad name" may contain only letters, digits, ".", "-" and "_" (nodes[0].name)',
    ])
  })

  it('requires nodes as a non-empty list of mappings', () => {
    expect(where('knownHosts: x\n')).toEqual([
      '1:1: a farm file needs "nodes:", a list of at least one node (nodes)',
    ])
    expect(where('nodes: []\n')).toEqual(['1:8: "nodes" needs at least one node (nodes)'])
    expect(where('nodes:\n  a: 1\n')).toEqual(['2:3: "nodes" must be a list of nodes (nodes)'])
    expect(where('nodes:\n')).toEqual(['1:7: "nodes" must be a list of nodes (nodes)'])
    expect(where('nodes:\n  - a\n')).toEqual([
      '2:5: expected a node (a mapping of keys to values), found string "a" (nodes[0])',
    ])
    expect(where('- a\n')).toEqual([
      '1:1: expected a farm (with "nodes:") (a mapping of keys to values), found a list',
    ])
  })

  it('reports a YAML syntax error', () => {
    expect(where('nodes:\n  - name: a\n   host: b\n')).toHaveLength(1)
  })

  it('names the farm file in the error message', () => {
    expect(() => parseFarm('/farms/farm.yml', 'nodes: []\n')).toThrow(
      'Farm file is invalid (1 problem):\n  /farms/farm.yml:1:8: "nodes" needs at least one node (nodes)',
    )
  })
})

describe('parseFarm: health limits', () => {
  const ssh = (name: string, extra = '') => `  - name: ${name}\n    host: h\n    user: u\n${extra}`

  it('reads them farm-wide and per node; a farm or node without any has none', () => {
    const farm = parseFarm(
      '/f.yml',
      'health:\n  loadPerCore: 1000 # the lab\n  memoryUsedPct: 99.5\n  diskFree: 5g\n  engineSlowMs: 3000\n  clockSkewMs: 60000\nnodes:\n' +
        ssh('a', '    health:\n      loadPerCore: 4\n      diskFree: 512m\n') +
        ssh('b', '    health: { diskFree: 1073741824 }\n') +
        ssh('c', '    health: {}\n') +
        ssh('d'),
    )
    expect(farm.health).toEqual({
      loadPerCore: 1000,
      memoryUsedPct: 99.5,
      diskFreeBytes: 5 * 1024 ** 3,
      engineSlowMs: 3000,
      clockSkewMs: 60000,
    })
    expect(farm.nodes.map((n) => n.health)).toEqual([
      { loadPerCore: 4, diskFreeBytes: 512 * 1024 ** 2 },
      { diskFreeBytes: 1024 ** 3 },
      {},
      undefined,
    ])
    expect('health' in farm.nodes[3]!).toBe(false)
    expect('health' in parseFarm('/f.yml', 'nodes:\n' + ssh('a'))).toBe(false)
  })

  // Nodes are checked first, then the farm-wide keys (as with platforms).
  it('refuses wrong types, numbers of 0 or less, a percentage above 100 and sizes that are not sizes, where they stand', () => {
    expect(
      where(
        'health:\n  loadPerCore: high\n  memoryUsedPct: 101\n  diskFree: lots\n  engineSlowMs: 0\n  clockSkewMs: -5\nnodes:\n' +
          ssh('a', '    health:\n      loadPerCore: "4"\n      diskFree: 0\n      memoryUsedPct: [90]\n') +
          ssh('b', '    health: 4\n'),
      ),
    ).toEqual([
      '12:20: loadPerCore must be a number above 0 (1-minute load per core, such as 4), found string "4" (nodes[0].health.loadPerCore)',
      '13:17: diskFree must be a size above 0 such as 5g or 500m, not "0" (nodes[0].health.diskFree)',
      '14:22: memoryUsedPct must be a number above 0 and at most 100 (percent of memory used, such as 98), found a list (nodes[0].health.memoryUsedPct)',
      '18:13: expected health limits (loadPerCore, memoryUsedPct, diskFree, …) (a mapping of keys to values), found number 4 (nodes[1].health)',
      '2:16: loadPerCore must be a number above 0 (1-minute load per core, such as 4), found string "high" (health.loadPerCore)',
      '3:18: memoryUsedPct must be a number above 0 and at most 100 (percent of memory used, such as 98), found number 101 (health.memoryUsedPct)',
      '4:13: diskFree must be a size above 0 such as 5g or 500m, not "lots" (health.diskFree)',
      '5:17: engineSlowMs must be a number above 0 (milliseconds, such as 3000), found number 0 (health.engineSlowMs)',
      '6:16: clockSkewMs must be a number above 0 (milliseconds, such as 60000), found number -5 (health.clockSkewMs)',
    ])
  })

  it('refuses unknown keys with a did-you-mean, and says how to write the free disk space', () => {
    expect(
      where(
        'health:\n  loadPercore: 4\n  diskFreeBytes: 1000\n  cpu: 90\nnodes:\n' +
          ssh('a', '    helth:\n      loadPerCore: 4\n    health:\n      engineSlow: 3000\n'),
      ),
    ).toEqual([
      '9:5: unknown key "helth"; did you mean "health"? (nodes[0].helth)',
      '12:7: unknown key "engineSlow"; did you mean "engineSlowMs"? (nodes[0].health.engineSlow)',
      '2:3: unknown key "loadPercore"; did you mean "loadPerCore"? (health.loadPercore)',
      '3:3: write "diskFree", a size such as 5g or 500m (health.diskFreeBytes)',
      '4:3: unknown key "cpu"; expected one of: loadPerCore, memoryUsedPct, diskFree, engineSlowMs, clockSkewMs (health.cpu)',
    ])
    expect(where('health:\nnodes:\n' + ssh('a'))).toEqual([
      '1:8: expected health limits (loadPerCore, memoryUsedPct, diskFree, …) (a mapping of keys to values), found an empty value (health)',
    ])
  })
})

describe('loadFarmFile', () => {
  let dir: string
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('reports a missing file at 1:1', () => {
    dir = mkdtempSync(join(tmpdir(), 'ym-farm-'))
    const file = join(dir, 'nope.yml')
    try {
      loadFarmFile(file)
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidSourceError)
      expect((e as InvalidSourceError).problems).toEqual([
        expect.objectContaining({ file, line: 1, col: 1, path: '' }),
      ])
      expect((e as InvalidSourceError).problems[0]!.message).toMatch(/^cannot read the farm file: ENOENT/)
    }
  })

  it('resolves a relative identityFile against the directory of the file', () => {
    dir = mkdtempSync(join(tmpdir(), 'ym-farm-'))
    const file = join(dir, 'farm.yml')
    writeFileSync(file, 'nodes:\n  - name: a\n    host: h\n    user: u\n    identityFile: id_ed25519\n')
    expect(loadFarmFile(file).nodes[0]!.identityFile).toBe(join(dir, 'id_ed25519'))
  })
})

describe('helpers', () => {
  it('expandPath', () => {
    expect(expandPath('~', '/base')).toBe(homedir())
    expect(expandPath('~/k', '/base')).toBe(join(homedir(), 'k'))
    expect(expandPath('k', '/base')).toBe('/base/k')
    expect(expandPath('/abs/k', '/base')).toBe('/abs/k')
  })

  it('normalizeLabels', () => {
    expect(normalizeLabels([])).toEqual(['self-hosted'])
    expect(normalizeLabels(['A', 'a', 'B'])).toEqual(['self-hosted', 'a', 'b'])
  })
})

describe('parseFarm: platforms', () => {
  it('maps runner labels to an image, with or without the node labels they need', () => {
    const farm = parseFarm(
      '/f.yml',
      'platforms:\n  Ubuntu-Latest: debian:bookworm\n  ubuntu-22.04: { image: ubuntu:22.04, labels: [X64] }\nnodes:\n  - { name: a, host: local }\n',
    )
    expect(farm.platforms).toEqual({
      'ubuntu-latest': { image: 'debian:bookworm', labels: [] },
      'ubuntu-22.04': { image: 'ubuntu:22.04', labels: ['x64'] },
    })
    expect(withPlatforms(farm, { 'ubuntu-22.04': 'mine:1', macos: 'x' }).platforms).toEqual({
      'ubuntu-latest': { image: 'debian:bookworm', labels: [] },
      'ubuntu-22.04': { image: 'mine:1', labels: ['x64'] },
      macos: { image: 'x', labels: [] },
    })
  })

  it('reports a platform without image and unknown keys, at their place', () => {
    expect(() =>
      parseFarm(
        '/f.yml',
        'platforms:\n  u: { labels: [x] }\n  v: { image: i, lables: [x] }\nnodes:\n  - { name: a, host: local }\n',
      ),
    ).toThrow(
      /\/f\.yml:2:6: platform "u" needs an "image" \(platforms\.u\.image\)\n.*\/f\.yml:3:18: unknown key "lables"; did you mean "labels"\? \(platforms\.v\.lables\)/,
    )
  })
})

describe('parseFarm: jump hosts', () => {
  const ssh = (name: string, jump?: string) =>
    `  - name: ${name}\n    host: 10.0.0.${name.length}\n    user: ci\n` + (jump ? `    jump: ${jump}\n` : '')

  it('reads jump as the name of another node, chains included', () => {
    const farm = parseFarm(
      '/f.yml',
      'nodes:\n' + ssh('bastion') + ssh('inner', 'bastion') + ssh('deep', 'inner'),
    )
    expect(farm.nodes.map((n) => [n.name, n.jump])).toEqual([
      ['bastion', null],
      ['inner', 'bastion'],
      ['deep', 'inner'],
    ])
    expect(jumpChain(farm, farm.nodes[2]!).map((n) => n.name)).toEqual(['inner', 'bastion'])
    expect(jumpChain(farm, farm.nodes[0]!)).toEqual([])
    expect(describeNode(farm.nodes[1]!)).toBe('inner (ci@10.0.0.5:22 via bastion)')
  })

  it('refuses an unknown jump host, suggesting a close name', () => {
    expect(where('nodes:\n' + ssh('bastion') + ssh('inner', 'bastoin') + ssh('other', 'gateway'))).toEqual([
      '8:11: jump host "bastoin" is not a node of this farm; did you mean "bastion"? (nodes[1].jump)',
      '12:11: jump host "gateway" is not a node of this farm; nodes: bastion, inner, other (nodes[2].jump)',
    ])
  })

  it('refuses a cycle once, as its path, and a node that jumps through itself', () => {
    expect(
      where('nodes:\n' + ssh('a', 'b') + ssh('b', 'c') + ssh('c', 'a') + ssh('d', 'a') + ssh('e', 'e')),
    ).toEqual([
      '21:11: node "e" cannot be its own jump host (nodes[4].jump)',
      '5:11: jump hosts form a cycle: a -> b -> c -> a; one of these nodes must be reached directly (nodes[0].jump)',
    ])
  })

  it('refuses jumps from or to this machine', () => {
    expect(
      where(
        'nodes:\n  - name: here\n    host: local\n    jump: b\n' +
          ssh('b') +
          '  - name: c\n    host: h\n    user: u\n    jump: here\n',
      ),
    ).toEqual([
      '4:11: a node with host: local is this machine, reached without SSH; it cannot have a jump host (nodes[0].jump)',
      '11:11: jump host "here" is this machine (host: local), which has no SSH connection to carry another; remove "jump" to connect directly (nodes[2].jump)',
    ])
  })
})

describe('parseFarm: allowedHostPaths', () => {
  it('refuses a path under or above another, which a symlink could turn into any path', () => {
    const text = (list: string) =>
      'nodes:\n  - name: a\n    host: h\n    user: u\n    allowedHostPaths: ' + list + '\n'
    expect(problemsOf(text('[/srv/cache, /srv/cache/npm]')).map((p) => p.message)).toEqual([
      '"/srv/cache/npm" lies under "/srv/cache": a job that mounts the outer one could leave a symlink where the inner one is, and the engine follows it; keep only one of them',
    ])
    expect(problemsOf(text('[/srv/cache/npm, /srv]')).map((p) => p.message)[0]).toMatch(
      /^"\/srv" lies above "\/srv\/cache\/npm"/,
    )
    expect(parseFarm('/f.yml', text('[/srv/cache, /srv/cache-old]')).nodes[0]!.allowedHostPaths).toEqual([
      '/srv/cache',
      '/srv/cache-old',
    ])
  })

  const ssh = (name: string, extra = '') => `  - name: ${name}\n    host: h\n    user: u\n${extra}`

  it('reads the host paths a node lets jobs bind-mount; none by default', () => {
    const farm = parseFarm(
      '/f.yml',
      'nodes:\n' +
        ssh('a', '    allowedHostPaths: [/srv/cache, /var/run/docker.sock, /opt/tools/]\n') +
        ssh('b'),
    )
    expect(farm.nodes[0]!.allowedHostPaths).toEqual(['/srv/cache', '/var/run/docker.sock', '/opt/tools'])
    expect('allowedHostPaths' in farm.nodes[1]!).toBe(false)
  })

  it('refuses relative and unnormalised paths where they stand', () => {
    expect(
      where('nodes:\n' + ssh('a', '    allowedHostPaths:\n      - srv/cache\n      - /srv/../etc\n')),
    ).toEqual([
      '6:9: "srv/cache" is not an absolute path; host paths start with "/" (nodes[0].allowedHostPaths[0])',
      '7:9: write "/etc" rather than "/srv/../etc" (nodes[0].allowedHostPaths[1])',
    ])
    expect(where('nodes:\n' + ssh('a', '    allowedHostPaths: 7\n'))[0]).toMatch(
      /^5:23: .*\(nodes\[0\]\.allowedHostPaths\)$/,
    )
  })
})

describe('parseFarm: preemption', () => {
  const node = 'nodes:\n  - name: n1\n    host: 10.0.0.5\n    user: ci\n'
  it('is off unless the farm turns it on, and must be true or false', () => {
    expect(parseFarm('/f.yml', node).preemption).toBeUndefined()
    expect(parseFarm('/f.yml', `preemption: true\n${node}`).preemption).toBe(true)
    expect(where(`preemption: sometimes\n${node}`)).toEqual([
      '1:13: "preemption" must be true or false (preemption)',
    ])
  })
})

describe('parseFarm: cancelGraceSeconds', () => {
  const node = 'nodes:\n  - name: n1\n    host: 10.0.0.5\n    user: ci\n'
  it('is unset unless the farm sets it, and must be seconds from 0 to 3600', () => {
    expect(parseFarm('/f.yml', node).cancelGraceSeconds).toBeUndefined()
    expect(parseFarm('/f.yml', `cancelGraceSeconds: 2.5\n${node}`).cancelGraceSeconds).toBe(2.5)
    const rule =
      '"cancelGraceSeconds" must be a number of seconds from 0 to 3600 (how long a cancelled step has between SIGTERM and SIGKILL) (cancelGraceSeconds)'
    expect(where(`cancelGraceSeconds: soon\n${node}`)).toEqual([`1:21: ${rule}`])
    expect(where(`cancelGraceSeconds: -1\n${node}`)).toEqual([`1:21: ${rule}`])
  })
})

describe('parseFarm: logCapPerJob', () => {
  const node = 'nodes:\n  - name: n1\n    host: 10.0.0.5\n    user: ci\n'
  it('keeps every line unless the farm sets a cap, which must be a size of at least 1m', () => {
    expect(parseFarm('/f.yml', node).logCapPerJob).toBeUndefined()
    expect(parseFarm('/f.yml', `logCapPerJob: 2g\n${node}`).logCapPerJob).toBe(2 * 1024 ** 3)
    const rule =
      '"logCapPerJob" must be a size of at least 1m, such as 500m or 2g (the most output kept per job attempt) (logCapPerJob)'
    expect(where(`logCapPerJob: lots\n${node}`)).toEqual([`1:15: ${rule}`])
    expect(where(`logCapPerJob: 10k\n${node}`)).toEqual([`1:15: ${rule}`])
  })
})
