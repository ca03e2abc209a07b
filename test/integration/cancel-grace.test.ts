/**
 * Cancelling a running step on the lab, on a docker node and on a shell node over SSH: its
 * processes get SIGTERM first, so a step that traps it cleans up; what ignores it is killed once
 * the farm's grace period (cancelGraceSeconds) is over. Nothing of the job stays on the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSessions } from '../../src/main/core/executor/node-sessions'
import { prepareRun } from '../../src/main/core/executor/prepare-run'
import { executeRun } from '../../src/main/core/executor/run-workflow'
import { loadFarmFile } from '../../src/main/core/farm/farm-file'
import type { Farm } from '../../src/main/core/farm/farm-model'
import { openDatabase, type Db } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { parseWorkflow } from '../../src/main/core/workflow/parse-workflow'
import { tempDir } from '../support/cli'
import { hostEngine, lab } from '../support/lab'

let db: Db
let runs: RunStore

beforeAll(() => {
  db = openDatabase(tempDir('ym-grace-'))
  runs = new RunStore(db)
})
afterAll(() => db.close())

/** n1 alone, as a docker node or as a shell node, with the given grace period. */
function farmOf(executor: 'docker' | 'shell', cancelGraceSeconds: number): Farm {
  const farm = loadFarmFile(lab().farmFile)
  return {
    ...farm,
    cancelGraceSeconds,
    nodes: farm.nodes
      .filter((n) => n.name === 'n1')
      .map((n) => (executor === 'shell' ? { ...n, name: 'shell1', executor } : n)),
  }
}

/** Runs `script` as the one step of a job, cancels the run once it printed "started"; its log. */
async function cancelled(farm: Farm, script: string): Promise<{ lines: string[]; state: string }> {
  const workflow = await parseWorkflow(
    'grace.yml',
    `on: push\njobs:\n  stop:\n    runs-on: linux\n    steps:\n      - run: |\n${script
      .split('\n')
      .map((l) => `          ${l}`)
      .join('\n')}\n`,
  )
  const sessions = new NodeSessions(farm, { timeoutMs: 5000 })
  try {
    const abort = new AbortController()
    const result = executeRun(await prepareRun(workflow, farm, sessions), {
      store: runs,
      signal: abort.signal,
      observer: { log: (_t, _s, text) => void (text === 'started' && abort.abort()) },
    })
    const { runId, state } = await result
    return { lines: runs.getLogs(runId).map((l) => l.text), state }
  } finally {
    await sessions.closeAll()
  }
}

const TRAPS = `trap 'echo cleaning up; sleep 0.3; echo cleaned; exit 1' TERM
echo started
sleep 60 & wait`

const IGNORES = `trap '' TERM
echo started
sleep 60 & wait
echo never`

describe('cancelling a step on the lab', () => {
  for (const executor of ['docker', 'shell'] as const) {
    it(`${executor} node: SIGTERM first, so the step cleans up`, async () => {
      const { lines, state } = await cancelled(farmOf(executor, 20), TRAPS)
      expect(state).toBe('cancelled')
      expect(lines).toContain('cleaning up')
      expect(lines).toContain('cleaned')
    }, 60_000)

    it(`${executor} node: SIGKILL once the grace period is over, for what ignores SIGTERM`, async () => {
      const { lines, state } = await cancelled(farmOf(executor, 1), IGNORES)
      expect(state).toBe('cancelled')
      expect(lines).toContain('started')
      expect(lines).not.toContain('never')
    }, 60_000)
  }

  it('leaves no container of these jobs on the host', async () => {
    const instance = runs.instanceId()
    expect(
      await hostEngine('n1').listContainers({
        all: true,
        filters: { label: [`io.yardmaster.instance=${instance}`] },
      }),
    ).toEqual([])
  })
})
