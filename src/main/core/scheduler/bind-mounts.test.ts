import { describe, expect, it } from 'vitest'
import { parseWorkflow } from '../workflow/parse-workflow'
import { allowHint, hostPathAllowed, hostPathOf, refusedHostPaths, volumePositions } from './bind-mounts'

describe('bind mounts a workflow asks for', () => {
  it('reads the host path of a volume spec; named and anonymous volumes have none', () => {
    expect(hostPathOf('/:/host')).toBe('/')
    expect(hostPathOf('/var/run/docker.sock:/var/run/docker.sock')).toBe('/var/run/docker.sock')
    expect(hostPathOf('/srv/cache/../../etc:/etc2:ro')).toBe('/etc')
    expect(hostPathOf('cache:/root/.cache')).toBeNull()
    expect(hostPathOf('/data/only-in-the-container')).toBeNull()
  })

  it('allows exactly the allowed paths: not what lies under them (a symlink planted there), nor a shared prefix', () => {
    const allowed = ['/srv/cache', '/var/run/docker.sock']
    expect(hostPathAllowed('/srv/cache', allowed)).toBe(true)
    expect(hostPathAllowed('/srv/cache/', allowed)).toBe(true)
    expect(hostPathAllowed('/srv/cache/link-to-root', allowed)).toBe(false)
    expect(hostPathAllowed('/srv/cache-other', allowed)).toBe(false)
    expect(hostPathAllowed('/srv/cache/../secrets', allowed)).toBe(false)
    expect(hostPathAllowed('/var/run/docker.sock', allowed)).toBe(true)
    expect(hostPathAllowed('/', allowed)).toBe(false)
    expect(hostPathAllowed('/anything', ['/'])).toBe(true)
  })

  it('refuses host paths by default, once each, and lets named volumes through', () => {
    expect(refusedHostPaths(['/:/host', 'named:/x', '/:/again', '/srv/a:/a'], {})).toEqual(['/', '/srv/a'])
    expect(refusedHostPaths(['/srv/a:/a', 'named:/x'], { allowedHostPaths: ['/srv/a'] })).toEqual([])
    expect(refusedHostPaths(['/srv/a/b:/a'], { allowedHostPaths: ['/srv/a'] })).toEqual(['/srv/a/b'])
  })

  it('says which setting to change, and where the node is declared', () => {
    expect(allowHint('/srv/a', { name: 'n1', source: { file: '/etc/farm.yml', line: 7, col: 5 } })).toBe(
      'add "/srv/a" to allowedHostPaths of node n1 in /etc/farm.yml:7',
    )
    expect(allowHint('/srv/a', { name: 'n1', source: null })).toBe(
      'add "/srv/a" to allowedHostPaths of node n1',
    )
  })

  it('finds where each volume of the container and of the services is written', async () => {
    const wf = await parseWorkflow(
      'wf.yml',
      [
        'on: push',
        'jobs:',
        '  build:',
        '    runs-on: linux',
        '    container:',
        '      image: debian',
        '      volumes:',
        '        - /:/host',
        '        - cache:/c',
        '    services:',
        '      db:',
        '        image: postgres',
        '        volumes: [/var/lib/pg:/data]',
        '    steps:',
        '      - run: true',
        '',
      ].join('\n'),
    )
    const job = wf.jobs[0]!
    expect(volumePositions(job.container, job.services)).toEqual([
      { field: 'container.volumes[0]', line: 8, col: 11 },
      { field: 'container.volumes[1]', line: 9, col: 11 },
      { field: 'services.db.volumes[0]', line: 13, col: 19 },
    ])
    expect(volumePositions(null, null)).toEqual([])
  })
})
