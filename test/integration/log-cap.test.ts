/**
 * The farm's per-job log cap on the lab: a job printing 2 MB under a 1 MiB cap keeps its first
 * MiB, says where the cap was reached, is marked on the job, and goes on to succeed.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { cli, tempDir } from '../support/cli'
import { lab } from '../support/lab'

describe('logCapPerJob', () => {
  it('keeps a loud job its first MiB, says so in the log and on the job, and lets it finish', async () => {
    const dir = tempDir()
    const farm = join(dir, 'farm.yml')
    writeFileSync(farm, `logCapPerJob: 1m\n${readFileSync(lab().farmFile, 'utf8')}`)
    const workflow = join(dir, 'loud.yml')
    // 20,000 lines of 100 bytes (with the newline): 2 MB, twice the cap.
    writeFileSync(
      workflow,
      `on: push
jobs:
  loud:
    runs-on: general
    container: lab/busybox:1
    steps:
      - run: awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "%010d %088d\\n", i, 0 }'
      - run: echo after-the-cap
`,
    )
    const data = join(dir, 'data')
    const res = await cli(['run', workflow, '--farm', farm, '--data-dir', data])
    expect(res.code).toBe(0)
    // Step 2 ran (its header is shown), but its output is past the cap.
    expect(res.out).toContain('step 2: Run echo after-the-cap')
    expect(res.out).not.toMatch(/^\[loud\] after-the-cap$/m)

    const db = openDatabase(data)
    try {
      const store = new RunStore(db)
      const [run] = store.listRuns(1)
      const detail = store.getRun(run!.id)
      const job = detail.jobs[0]!
      expect(job.state).toBe('succeeded')
      expect(job.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded'])
      expect(job.logCappedAt).toBe(1024 * 1024)
      const lines = store.getLogs(run!.id, 0, 100_000)
      const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.text)
      // Whole lines up to the cap, in order, from the first: 10,485 of 100 bytes fit in a MiB.
      expect(out).toHaveLength(Math.floor((1024 * 1024) / 100))
      expect(out.every((t, i) => Number(t.slice(0, 10)) === i + 1)).toBe(true)
      const said = lines.filter((l) => l.text.includes('reached its cap'))
      expect(said.map((l) => l.text)).toEqual([
        "this job's log reached its cap of 1.0 MiB (logCapPerJob in the farm file): later output is not stored or shown; the job goes on",
      ])
      expect(lines.some((l) => l.text === 'after-the-cap')).toBe(false)
    } finally {
      db.close()
    }
  }, 120_000)
})
