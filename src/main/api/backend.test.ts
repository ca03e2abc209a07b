import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ApiEvents, EventName } from '../../shared/api'
import type { Farm } from '../core/farm/farm-model'
import { FarmService } from '../core/farm/farm-service'
import { openDatabase, type Db } from '../core/store/database'
import { NodeMetricsStore } from '../core/store/node-metrics-store'
import { RunStore, type NewRun } from '../core/store/run-store'
import { Orchestrator } from '../core/orchestrator/orchestrator'
import { WorkflowCatalog } from '../core/workflow/workflow-catalog'
import { envKeySource, SecretStore } from '../core/secrets/secret-store'
import { Backend } from './backend'

const FARM: Farm = {
  file: '/repo/farm.yml',
  knownHosts: '/home/me/.ssh/known_hosts',
  platforms: {},
  nodes: [
    {
      name: 'n1',
      host: '10.0.0.5',
      port: 22,
      user: 'ci',
      identityFile: '/secret/key',
      executor: 'docker',
      labels: ['self-hosted', 'linux'],
      slots: 2,
      defaultImage: 'debian',
      source: null,
    },
  ],
}

const RUN: NewRun = {
  workflowName: 'ci',
  workflowFile: '/repo/ci.yml',
  farmFile: null,
  jobs: [{ key: 'build', name: 'build', needs: [], runsOn: ['linux'], steps: ['Run make'] }],
}

let dir: string
let db: Db
let store: RunStore
let backend: Backend
let farmService: FarmService
const extra: Db[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-api-'))
  db = openDatabase(dir)
  store = new RunStore(db)
  // Not started: no node is probed here (the lab tests do that: test/integration/node-api.test.ts).
  farmService = new FarmService(FARM, { dataDir: dir, metrics: new NodeMetricsStore(db) })
  // Not started either: the API's checks are what these tests are about (the orchestrator's own
  // tests run it: core/orchestrator/orchestrator.test.ts).
  const orchestrator = new Orchestrator({ db, farm: () => FARM, sessions: () => farmService.sessions })
  const secrets = new SecretStore(dir, envKeySource({ YARDMASTER_SECRETS_KEY: 'a passphrase for the tests' }))
  const workflows = new WorkflowCatalog(
    dir,
    () => store.workflowFiles(),
    () => secrets.list().map((s) => s.name),
  )
  backend = new Backend({
    store,
    farmService,
    orchestrator,
    workflows,
    secrets,
    dataDir: dir,
    version: '9.9.9',
  })
})
afterEach(async () => {
  backend.close()
  await farmService.stop()
  for (const d of extra.splice(0)) d.close()
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

function otherConnection(): RunStore {
  const d = openDatabase(dir)
  extra.push(d)
  return new RunStore(d)
}

describe('Backend.invoke', () => {
  it('answers unknown methods with an error envelope, including inherited names', async () => {
    for (const method of ['runs.delete', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(await backend.invoke(method, {})).toEqual({
        ok: false,
        error: { name: 'UnknownMethod', message: `no such method: ${method}` },
      })
    }
  })

  it('answers app.info', async () => {
    expect(await backend.invoke('app.info', {})).toEqual({
      ok: true,
      result: { version: '9.9.9', dataDir: dir, farmFile: '/repo/farm.yml' },
    })
  })

  it('lists farm nodes with their state, without connection secrets', async () => {
    const env = await backend.invoke('farm.nodes', undefined)
    expect(env).toMatchObject({
      ok: true,
      result: [
        {
          name: 'n1',
          host: '10.0.0.5',
          address: 'ci@10.0.0.5:22',
          executor: 'docker',
          labels: ['self-hosted', 'linux'],
          slots: 2,
          health: 'offline',
          healthReasons: ['not probed yet'],
          admin: 'active',
          description: 'offline (not probed yet)',
          canTakeNewJobs: false,
          sample: null,
          source: null,
        },
      ],
    })
    expect(JSON.stringify(env)).not.toContain('/secret/key')
  })

  it('refuses an unknown node by name, with the names there are', async () => {
    for (const method of ['node.test', 'node.containers', 'node.hostKey', 'node.events'])
      expect(await backend.invoke(method, { node: 'n2' })).toEqual({
        ok: false,
        error: {
          name: 'UnknownNodeError',
          message: 'there is no node "n2" in /repo/farm.yml; did you mean "n1"? Nodes: n1',
        },
      })
  })

  it('drain, cordon, resume: kept, announced, illegal moves refused', async () => {
    const changed: unknown[] = []
    backend.subscribe((e, p) => e === 'node.changed' && changed.push(p))
    const drained = await backend.call('node.admin', { node: 'n1', action: 'drain', reason: 'disk swap' })
    expect(drained).toMatchObject({ admin: 'draining', adminReason: 'disk swap', canTakeNewJobs: false })
    await Promise.resolve()
    expect(changed).toEqual([drained])
    expect(new NodeMetricsStore(db).adminStates().get('n1')).toMatchObject({ kind: 'draining' })
    expect(await backend.invoke('node.admin', { node: 'n1', action: 'resume' })).toMatchObject({
      ok: true,
      result: { admin: 'active' },
    })
    expect(await backend.invoke('node.admin', { node: 'n1', action: 'resume' })).toEqual({
      ok: false,
      error: {
        name: 'AdminRefusedError',
        message: 'cannot resume n1: the node is active already: there is nothing to resume',
      },
    })
    expect((await backend.call('node.events', {})).map((e) => `${e.kind}:${e.from}->${e.to}`)).toEqual([
      'admin:draining->active',
      'admin:active->draining',
    ])
  })

  it('refuses invalid arguments with InvalidArgumentError and a message that says why', async () => {
    const bad = async (method: string, args: unknown) => {
      const env = await backend.invoke(method, args)
      expect(env.ok).toBe(false)
      if (env.ok) throw new Error('unreachable')
      expect(env.error.name).toBe('InvalidArgumentError')
      return env.error.message
    }
    const range = `"runId" must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`
    expect(await bad('runs.get', { runId: 'x' })).toBe(range)
    expect(await bad('runs.get', { runId: -1 })).toBe(range)
    expect(await bad('runs.get', { runId: 0 })).toBe(range)
    expect(await bad('runs.get', { runId: 1.5 })).toBe(range)
    expect(await bad('runs.get', {})).toBe('"runId" is required')
    expect(await bad('runs.get', null)).toBe('"runId" is required')
    expect(await bad('runs.get', 'runId=1')).toBe('arguments must be an object')
    expect(await bad('runs.list', { limit: 0 })).toBe('"limit" must be a whole number from 1 to 1000')
    expect(await bad('runs.list', { limit: 1001 })).toBe('"limit" must be a whole number from 1 to 1000')
    expect(await bad('logs.get', { runId: 1, afterSeq: -1 })).toBe(
      `"afterSeq" must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`,
    )
    expect(await bad('logs.get', { runId: 1, limit: 50_001 })).toBe(
      '"limit" must be a whole number from 1 to 50000',
    )
    expect(await bad('node.test', {})).toBe('"node" is required')
    expect(await bad('node.test', { node: ' ' })).toBe('"node" must not be empty')
    expect(await bad('node.test', { node: 7 })).toBe('"node" must be a string')
    expect(await bad('node.admin', { node: 'n1', action: 'delete' })).toBe(
      '"action" must be one of drain, cordon, resume',
    )
    expect(await bad('node.admin', { node: 'n1', action: 'resume', reason: 'x' })).toBe(
      '"reason" is for drain and cordon, not resume',
    )
    expect(await bad('node.series', { node: 'n1' })).toBe('"from" is required')
    expect(await bad('node.trust', { node: 'n1' })).toBe('"fingerprint" is required')
    expect(await bad('node.copyImage', { node: 'n1', from: 'n2' })).toBe('"image" is required')
    expect(await bad('farm.editNode', { node: 'n1' })).toBe('"edit" is required')
    expect(await bad('farm.editNode', { node: 'n1', edit: [] })).toBe('"edit" must be an object')
    expect(await bad('farm.editNode', { node: 'n1', edit: {} })).toBe(
      '"edit" changes nothing; give one of labels, slots, defaultImage',
    )
    expect(await bad('farm.editNode', { node: 'n1', edit: { slot: 2 } })).toBe(
      '"edit" has unknown field "slot"; it takes "labels", "slots", "defaultImage"',
    )
    expect(await bad('farm.editNode', { node: 'n1', edit: { slots: 0 } })).toBe(
      '"edit.slots" must be a whole number from 1 to 1000',
    )
    expect(await bad('farm.editNode', { node: 'n1', edit: { labels: 'gpu' } })).toMatch(
      /^"edit.labels" must be a list/,
    )
    expect(await bad('farm.editNode', { node: 'n1', edit: { labels: [''] } })).toMatch(
      /^"edit.labels" must be a list/,
    )
    expect(await bad('farm.editNode', { node: 'n1', edit: { defaultImage: 3 } })).toBe(
      '"edit.defaultImage" must be an image name, or null to remove it',
    )
  })

  it('checks trigger, cancel, re-run and queue arguments; refuses what the orchestrator cannot do, by name', async () => {
    const err = async (method: string, args: unknown) => {
      const env = await backend.invoke(method, args)
      if (env.ok) throw new Error(`${method} answered ${JSON.stringify(env.result)}`)
      return `${env.error.name}: ${env.error.message}`
    }
    expect(await err('runs.trigger', {})).toBe('InvalidArgumentError: "workflowFile" is required')
    expect(await err('runs.trigger', { workflowFile: '/x.yml', priority: 'urgent' })).toBe(
      'InvalidArgumentError: "priority" must be one of hotfix, high, normal, low',
    )
    expect(await err('runs.trigger', { workflowFile: '/x.yml', inputs: ['a'] })).toBe(
      'InvalidArgumentError: "inputs" must be an object',
    )
    expect(await err('runs.trigger', { workflowFile: '/x.yml', inputs: { a: {} } })).toBe(
      'InvalidArgumentError: "inputs.a" must be a string, a number or a boolean',
    )
    expect(await err('runs.trigger', { workflowFile: '/x.yml', labels: [''] })).toBe(
      'InvalidArgumentError: "labels" must be a list of labels',
    )
    expect(await err('runs.trigger', { workflowFile: '/etc/shadow' })).toBe(
      'InvalidArgumentError: "workflowFile" must be a workflow file ending in .yml or .yaml, not "/etc/shadow"',
    )
    const many = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`i${i}`, 'x']))
    expect(await err('runs.trigger', { workflowFile: '/x.yml', inputs: many })).toBe(
      'InvalidArgumentError: "inputs" has 26 entries; a run takes at most 25',
    )
    expect(await err('runs.trigger', { workflowFile: '/x.yml', inputs: { big: 'x'.repeat(70_000) } })).toBe(
      'InvalidArgumentError: "inputs" is 70010 characters; a run takes at most 65535 (GitHub\'s limit for a dispatch)',
    )
    expect(
      await err('runs.trigger', { workflowFile: '/x.yml', labels: Array.from({ length: 51 }, () => 'l') }),
    ).toBe('InvalidArgumentError: "labels" has 51 labels; at most 50')
    expect(await err('runs.trigger', { workflowFile: join(dir, 'none.yml') })).toBe(
      `InvalidArgumentError: "workflowFile" ${join(dir, 'none.yml')} is not a workflow the console knows: add its folder under Workflows (workflows.addFolder), or run it once with yardmaster run`,
    )
    expect(await err('runs.rerun', { runId: 1, mode: 'some' })).toBe(
      'InvalidArgumentError: "mode" must be one of all, failed, job',
    )
    expect(await err('runs.rerun', { runId: 1, mode: 'job' })).toBe('InvalidArgumentError: "job" is required')
    expect(await err('jobs.cancel', { runId: 1 })).toBe('InvalidArgumentError: "jobKey" is required')
    expect(await err('queue.setPriority', { queueId: 1, priority: 'x' })).toBe(
      'InvalidArgumentError: "priority" must be one of hotfix, high, normal, low',
    )
    const { runId } = store.createRun(RUN)
    store.setRunState(runId, 'running')
    store.setRunState(runId, 'succeeded')
    expect(await err('runs.cancel', { runId })).toBe(`Error: run ${runId} has already succeeded`)
    expect(await err('queue.remove', { queueId: 99 })).toBe(
      'Error: queue entry 99 is not waiting (started, or unknown)',
    )
    expect(await backend.invoke('queue.list', {})).toEqual({
      ok: true,
      result: { runs: [], jobs: [], failed: [] },
    })
    // Nothing was recorded by the refusals.
    expect(store.listRuns(10)).toHaveLength(1)
  })

  it('lists the workflows of added folders and of the history, each validated', async () => {
    const folder = join(dir, 'repo')
    mkdirSync(join(folder, '.github', 'workflows'), { recursive: true })
    writeFileSync(
      join(folder, '.github', 'workflows', 'deploy.yml'),
      'name: Deploy\non:\n  workflow_dispatch:\n    inputs:\n      env: { type: choice, options: [staging, prod], required: true }\njobs:\n  d:\n    runs-on: linux\n    steps: [{ run: "echo ${{ secrets.PROD_KEY }} ${{ secrets.GITHUB_TOKEN }}" }]\n',
    )
    writeFileSync(join(folder, 'broken.yml'), 'on: push\njobs: 3\n')
    store.createRun(RUN)
    const env = await backend.invoke('workflows.addFolder', { folder })
    if (!env.ok) throw new Error(env.error.message)
    const list = env.result as Array<{
      file: string
      name: string | null
      problems: string[]
      source: string
      inputs: unknown[]
    }>
    expect(list.map((w) => [w.file.replace(dir, ''), w.source, w.name])).toEqual([
      ['/repo/broken.yml', 'folder', null],
      ['/repo/.github/workflows/deploy.yml', 'folder', 'Deploy'],
      // Run before, and gone from disk since: listed, with why it cannot be read.
      ['/repo/ci.yml', 'history', null],
    ])
    expect(list[0]!.problems[0]).toMatch(/broken\.yml:2:\d+: /)
    expect(list[1]).toMatchObject({ secrets: ['PROD_KEY'], missingSecrets: ['PROD_KEY'] })
    await backend.invoke('secrets.set', { name: 'prod_key', value: 'v' })
    const again = await backend.invoke('workflows.list', {})
    expect(again.ok && (again.result as Array<{ missingSecrets: string[] }>)[1]!.missingSecrets).toEqual([])
    expect(list[1]!.inputs).toEqual([
      {
        name: 'env',
        type: 'choice',
        required: true,
        default: null,
        options: ['staging', 'prod'],
        description: null,
      },
    ])
    expect(await backend.invoke('workflows.addFolder', { folder: join(dir, 'nope') })).toMatchObject({
      ok: false,
    })
    const removed = await backend.invoke('workflows.removeFolder', { folder })
    expect(removed.ok && (removed.result as unknown[]).length).toBe(1)
  })

  it('stores secrets write-only: names come back, values never', async () => {
    const set = await backend.invoke('secrets.set', { name: 'deploy_key', value: 'tok-5ecr3t' })
    expect(set).toMatchObject({ ok: true, result: [{ name: 'DEPLOY_KEY' }] })
    expect(JSON.stringify(await backend.invoke('secrets.list', {}))).not.toContain('5ecr3t')
    // Refusals say why without echoing the value.
    const bad = await backend.invoke('secrets.set', { name: '1bad', value: 'tok-5ecr3t' })
    expect(bad).toMatchObject({ ok: false, error: { name: 'SecretStoreError' } })
    expect(JSON.stringify(bad)).not.toContain('5ecr3t')
    expect(await backend.invoke('secrets.set', { name: 'X', value: 7 })).toMatchObject({
      ok: false,
      error: { name: 'InvalidArgumentError', message: '"value" must be a string' },
    })
    expect(await backend.invoke('secrets.delete', { name: 'DEPLOY_KEY' })).toMatchObject({
      ok: true,
      result: [],
    })
  })

  it('serves runs.list, runs.get and logs.get from the store', async () => {
    const a = store.createRun(RUN, 1)
    const b = store.createRun({ ...RUN, workflowName: 'second' }, 2)
    store.appendLogs(
      ['one', 'two', 'three'].map((text, i) => ({
        runId: a.runId,
        jobId: a.jobIds.get('build')!,
        stepIndex: 0,
        stream: 'stdout' as const,
        text,
        at: i,
      })),
    )

    const list = await backend.invoke('runs.list', {})
    expect(list.ok && (list.result as Array<{ id: number }>).map((r) => r.id)).toEqual([b.runId, a.runId])
    const limited = await backend.invoke('runs.list', { limit: 1 })
    expect(limited.ok && (limited.result as unknown[]).length).toBe(1)

    expect(await backend.invoke('runs.get', { runId: a.runId })).toEqual({
      ok: true,
      result: store.getRun(a.runId),
    })

    const logs = await backend.invoke('logs.get', { runId: a.runId })
    expect(logs.ok && (logs.result as Array<{ text: string }>).map((l) => l.text)).toEqual([
      'one',
      'two',
      'three',
    ])
    const first = store.getLogs(a.runId)[0]!.seq
    const page = await backend.invoke('logs.get', { runId: a.runId, afterSeq: first, limit: 1 })
    expect(page.ok && (page.result as Array<{ text: string }>).map((l) => l.text)).toEqual(['two'])
  })

  it('passes store errors through by name', async () => {
    expect(await backend.invoke('runs.get', { runId: 999 })).toEqual({
      ok: false,
      error: {
        name: 'RunNotFoundError',
        message: 'run 999 does not exist; list runs with `yardmaster history`',
      },
    })
  })

  it('call() is the typed in-process path', async () => {
    const { runId } = store.createRun(RUN)
    expect((await backend.call('runs.get', { runId })).run.id).toBe(runId)
    expect(await backend.call('app.info', {})).toMatchObject({ version: '9.9.9' })
  })
})

describe('events', () => {
  it('subscribe, emit and unsubscribe', () => {
    const got: Array<[EventName, unknown]> = []
    const off = backend.subscribe((e, p) => got.push([e, p]))
    const other = vi.fn()
    backend.subscribe(other)
    backend.emit('run.changed', { runId: 1 })
    off()
    backend.emit('log.appended', { runId: 1, lastSeq: 5 })
    expect(got).toEqual([['run.changed', { runId: 1 }]])
    expect(other).toHaveBeenCalledTimes(2)
    backend.close()
    backend.emit('run.changed', { runId: 2 })
    expect(other).toHaveBeenCalledTimes(2)
  })
})

describe('watchStore', () => {
  function collect() {
    const events: Array<{ event: EventName; payload: ApiEvents[EventName] }> = []
    backend.subscribe((event, payload) => events.push({ event, payload }))
    return events
  }

  it('tells about runs and logs that another connection writes', async () => {
    const events = collect()
    backend.watchStore(10)
    const writer = otherConnection()
    const created = writer.createRun(RUN)
    await vi.waitFor(
      () => expect(events).toContainEqual({ event: 'run.changed', payload: { runId: created.runId } }),
      {
        timeout: 2000,
        interval: 10,
      },
    )
    const last = writer.appendLogs([
      {
        runId: created.runId,
        jobId: created.jobIds.get('build')!,
        stepIndex: 0,
        stream: 'stdout',
        text: 'hi',
        at: 1,
      },
    ])
    await vi.waitFor(
      () =>
        expect(events).toContainEqual({
          event: 'log.appended',
          payload: { runId: created.runId, lastSeq: last },
        }),
      { timeout: 2000, interval: 10 },
    )
  })

  it('stops telling about a finished run once its state is known', async () => {
    const writer = otherConnection()
    const done = writer.createRun(RUN)
    writer.setRunState(done.runId, 'running', 4)
    writer.setRunState(done.runId, 'succeeded', 5)
    const events = collect()
    backend.watchStore(10)
    const live = writer.createRun(RUN)
    await vi.waitFor(
      () => expect(events).toContainEqual({ event: 'run.changed', payload: { runId: live.runId } }),
      {
        timeout: 2000,
        interval: 10,
      },
    )
    expect(events).not.toContainEqual({ event: 'run.changed', payload: { runId: done.runId } })
    expect(events.some((e) => e.event === 'log.appended')).toBe(false)
  })

  it('says nothing when nothing changed, and stops on close', async () => {
    const events = collect()
    backend.watchStore(5)
    await new Promise((r) => setTimeout(r, 50))
    expect(events).toEqual([])
    backend.close()
    otherConnection().createRun(RUN)
    await new Promise((r) => setTimeout(r, 50))
    expect(events).toEqual([])
  })
})
