import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { farmNode } from '../../../../test/support/farm-node'
import { openDatabase } from '../store/database'
import { RunStore } from '../store/run-store'
import { FILE_COMMANDS } from '../workflow/file-commands'
import { parseWorkflow } from '../workflow/parse-workflow'
import type { JobCheckpoint } from './job-checkpoint'
import type { JobEnvironment, Leftover, NodeExecutor, StepCommand } from './job-environment'
import { runJobInstance, timeoutText } from './job-runner'
import { LogSink } from './log-sink'

describe('timeoutText', () => {
  it('says a limit in minutes, or in seconds under a minute, naming the setting', () => {
    expect(timeoutText(5)).toBe('5 min (timeout-minutes)')
    expect(timeoutText(360)).toBe('360 min (timeout-minutes)')
    expect(timeoutText(1.5)).toBe('1.5 min (timeout-minutes)')
    expect(timeoutText(0.02)).toBe('1.2 s (timeout-minutes)')
  })
})

describe('runJobInstance taking over a dead orchestrator’s attempt', () => {
  const dirs: string[] = []
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  async function setUp() {
    const dir = mkdtempSync(join(tmpdir(), 'ym-takeover-'))
    dirs.push(dir)
    const db = openDatabase(dir)
    const store = new RunStore(db)
    const workflow = await parseWorkflow(
      'w.yml',
      [
        'on: push',
        'jobs:',
        '  build:',
        '    runs-on: linux',
        '    outputs:',
        '      v: ${{ steps.two.outputs.v }}',
        '    steps:',
        '      - id: one',
        '        run: echo one',
        '      - id: two',
        '        run: echo two',
        '      - run: echo "three $FROM_ONE ${{ steps.one.outputs.v }} ${{ steps.two.outputs.v }}"',
        '',
      ].join('\n'),
    )
    const created = store.createRun({
      workflowName: 'w',
      workflowFile: '/w.yml',
      farmFile: null,
      jobs: [{ key: 'build', name: 'build', needs: [], runsOn: ['linux'], steps: ['one', 'two', 'three'] }],
    })
    return {
      db,
      store,
      workflow,
      runId: created.runId,
      jobId: created.jobIds.get('build')!,
      stepIds: created.stepIds.get('build')!,
    }
  }

  it('follows the step that was running from its record, stores its lines once, and runs the rest with where the job stood', async () => {
    const { db, store, workflow, runId, jobId, stepIds } = await setUp()
    const nonce = 'abc123'
    // Where the job stood before step two, as its record on the node says.
    const checkpoint: JobCheckpoint = {
      v: 1,
      step: 1,
      nonce,
      startedAt: Date.now() - 1000,
      steps: { one: { outputs: { v: 'from-one' }, outcome: 'success', conclusion: 'success' } },
      addedEnv: { FROM_ONE: 'env-one' },
      addedPath: [],
      jobFailed: false,
      cancelled: false,
      failure: null,
      failedImageId: null,
      masks: ['masked-by-one'],
    }
    // The dead orchestrator ran step one and started step two, storing its first line.
    store.updateStep(stepIds[0]!, { state: 'running', startedAt: 1 })
    store.updateStep(stepIds[0]!, { state: 'succeeded', conclusion: 'success', exitCode: 0, finishedAt: 2 })
    store.updateStep(stepIds[1]!, { state: 'running', startedAt: 3 })
    store.appendLogs([
      { runId, jobId, stepIndex: 1, attempt: 1, stream: 'stdout', text: 'two: first', at: 1 },
    ])
    const ran: StepCommand[] = []
    const epilogue = FILE_COMMANDS.map(
      (f) => `\n@@ym-${nonce}:${f}@@\n${f === 'output' ? 'v=from-two\n' : ''}`,
    ).join('')
    const environment: JobEnvironment = {
      description: 'container c0ffee',
      ref: 'c0ffee',
      workspace: '/workspace',
      temp: '/tmp/yardmaster',
      records: '/tmp/yardmaster/_record',
      readFile: async (path) => (path.endsWith('/1/state.json') ? JSON.stringify(checkpoint) : null),
      resumeStep: async (record, onOutput) => {
        expect(record).toBe('/tmp/yardmaster/_record/1')
        onOutput('stdout', Buffer.from('two: first\ntwo: masked-by-one\n'))
        onOutput('stdout', Buffer.from(`two: last\n@@ym-files-${nonce}@@${epilogue}`))
        return 0
      },
      runStep: async (cmd, onOutput) => {
        ran.push(cmd)
        onOutput('stdout', Buffer.from(`ran: ${cmd.script}\n`))
        return 0
      },
      dispose: async () => true,
    }
    const adopted: Leftover[] = []
    const executor: NodeExecutor = {
      prepare: () => Promise.reject(new Error('a taken-over job makes no new environment')),
      fence: () => Promise.reject(new Error('not fenced')),
      adopt: async (l) => (adopted.push(l), environment),
    }
    const logs = new LogSink(store, () => {})
    try {
      const r = await runJobInstance(
        {
          workflow,
          job: workflow.jobs[0]!,
          key: 'build',
          jobId,
          stepIds,
          contexts: { github: {}, inputs: {}, vars: {}, secrets: {}, matrix: {}, strategy: {} },
          secrets: [],
          instance: 'inst',
          runId,
          attempt: 1,
          takeOver: { ref: 'c0ffee', step: 1 },
        },
        {
          store,
          logs,
          node: farmNode('n1'),
          executor,
          signal: new AbortController().signal,
          started: () => {},
          stepChanged: () => {},
        },
      )
      logs.flush()
      expect(adopted).toEqual([{ instance: 'inst', runId, jobKey: 'build', attempt: 1, ref: 'c0ffee' }])
      expect(r.state).toBe('succeeded')
      expect(r.outputs).toEqual({ v: 'from-two' })
      // Step one is not run again; step three sees what one and two left.
      expect(ran.map((c) => c.script)).toEqual(['echo "three $FROM_ONE from-one from-two"'])
      expect(ran[0]!.env.FROM_ONE).toBe('env-one')
      const lines = store
        .getLogs(runId)
        .filter((l) => l.stream === 'stdout')
        .map((l) => l.text)
      expect(lines).toEqual([
        'two: first',
        'two: ***',
        'two: last',
        'ran: echo "three $FROM_ONE from-one from-two"',
      ])
      expect(store.getLogs(runId).map((l) => l.text)).toContain(
        'taken over from the orchestrator that ran it, which stopped: following step 2 "Run echo two" from its record',
      )
    } finally {
      db.close()
    }
  })

  it('gives up, for the node’s sake, when the container is gone: the attempt is lost and fenced, the job tried again', async () => {
    const { db, store, workflow, runId, jobId, stepIds } = await setUp()
    let fenced = 0
    const executor: NodeExecutor = {
      prepare: () => Promise.reject(new Error('not prepared')),
      fence: () => Promise.reject(new Error('not fenced')),
      adopt: async () => null,
    }
    try {
      const r = await runJobInstance(
        {
          workflow,
          job: workflow.jobs[0]!,
          key: 'build',
          jobId,
          stepIds,
          contexts: { github: {}, inputs: {}, vars: {}, secrets: {}, matrix: {}, strategy: {} },
          secrets: [],
          instance: 'inst',
          runId,
          attempt: 1,
          takeOver: { ref: 'gone', step: 0 },
        },
        {
          store,
          logs: new LogSink(store, () => {}),
          node: farmNode('n1'),
          executor,
          signal: new AbortController().signal,
          started: () => {},
          stepChanged: () => {},
          leftBehind: () => fenced++,
        },
      )
      expect(r).toMatchObject({ state: 'failed', retryable: true, lost: true })
      expect(r.end.reason).toBe(
        'the orchestrator that ran it stopped, and what it ran on n1 could not be taken over',
      )
      expect(fenced).toBe(1)
    } finally {
      db.close()
    }
  })
})
