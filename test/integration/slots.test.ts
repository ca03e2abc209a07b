/**
 * A node's slots hold across processes: two `yardmaster run` in two terminals, sharing one
 * history, never put more jobs on a lab host than its slots. Checked on the host's own engine,
 * from its container events.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { spawnCli, tempDir } from '../support/cli'
import { containerEvents, host, lab } from '../support/lab'

describe('node slots across processes', () => {
  it('two runs from two terminals never fill a host past its slots', async () => {
    const n2 = host('n2')
    const dir = tempDir()
    const wf = join(dir, 'wide.yml')
    // Three jobs each, on the one host labelled gpu: six jobs for its slots.
    writeFileSync(
      wf,
      `on: push
jobs:
  t:
    strategy: { matrix: { k: [1, 2, 3] } }
    runs-on: [self-hosted, gpu]
    container: lab/busybox:1
    steps:
      - run: echo "job \${{ matrix.k }}"; sleep 2
`,
    )
    const since = Date.now()
    const args = ['run', wf, '--farm', lab().farmFile, '--data-dir', dir]
    const runs = [spawnCli(args), spawnCli(args)]
    const results = await Promise.all(runs.map((r) => r.done))
    for (const r of results) expect(r.code, r.out).toBe(0)

    const db = openDatabase(dir)
    const instance = new RunStore(db).instanceId()
    const claims = db.prepare('SELECT count(*) AS n FROM slot_claims').get()
    db.close()
    expect(claims).toEqual({ n: 0 })
    const events = (
      await containerEvents('n2', [`io.yardmaster.instance=${instance}`], since, ['start', 'die'])
    ).filter((e) => e.service === null)
    expect(events.filter((e) => e.action === 'start')).toHaveLength(6)
    let alive = 0
    let most = 0
    for (const e of events) {
      alive += e.action === 'start' ? 1 : -1
      most = Math.max(most, alive)
    }
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(n2.slots)
  }, 120_000)
})
