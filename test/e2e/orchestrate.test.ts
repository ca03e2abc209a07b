/**
 * Trigger, queue, cancel and re-run from the console, in real Chromium, against the real
 * `yardmaster serve` hosting the orchestrator, on the lab. Screenshots of the Run form, the
 * Queue view and a cancelled run go to docs/screenshots/.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../../src/main/core/store/database'
import { RunStore } from '../../src/main/core/store/run-store'
import { tempDir } from '../support/cli'
import { hostEngine, lab, REPO } from '../support/lab'
import { serve, type Served } from '../support/serve'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../support/chromium'

const SHOTS = join(REPO, 'docs', 'screenshots')

describe('trigger, queue, cancel and re-run from the console', () => {
  let dataDir: string
  let folder: string
  let served: Served
  let browser: Browser
  let page: Page
  const errors: string[] = []

  beforeAll(async () => {
    dataDir = tempDir()
    folder = join(dataDir, 'repo')
    mkdirSync(join(folder, '.github', 'workflows'), { recursive: true })
    writeFileSync(
      join(folder, '.github', 'workflows', 'deploy.yml'),
      `name: Deploy
on:
  workflow_dispatch:
    inputs:
      target:
        description: where to deploy
        type: choice
        options: [staging, prod]
        required: true
      dry-run:
        type: boolean
        default: true
      ticket:
        type: string
        required: true
jobs:
  deploy:
    runs-on: [self-hosted, general]
    container: lab/busybox:1
    steps:
      - run: |
          echo "deploying \${{ inputs.target }} dry-run=\${{ inputs.dry-run }} for \${{ inputs.ticket }}"
          echo "key=$KEY length=\${#KEY}"
        env: { KEY: '\${{ secrets.PROD_KEY }}' }
`,
    )
    // n3 is the lab's one host labelled arm64, with one slot: quick waits while long runs.
    writeFileSync(
      join(folder, '.github', 'workflows', 'soak.yml'),
      `name: Soak
on: [push, workflow_dispatch]
jobs:
  long:
    runs-on: [self-hosted, arm64]
    container: lab/busybox:1
    steps:
      - run: echo soaking; sleep 120
  quick:
    runs-on: [self-hosted, arm64]
    container: lab/busybox:1
    steps:
      - run: echo quick one
`,
    )
    served = await serve(['--data-dir', dataDir, '--farm', lab().farmFile], {
      YARDMASTER_SECRETS_KEY: 'the console e2e passphrase',
    })
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } })
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
    await page.goto(served.url)
    mkdirSync(SHOTS, { recursive: true })
  })

  afterAll(async () => {
    await browser?.close()
    await served?.stop()
  })

  const tab = (name: string) => page.getByRole('tab', { name: new RegExp(`^${name}`) }).click()
  const workflow = (file: string) => page.locator(`[data-workflow$="${file}"]`)

  it('runs a workflow from its form, with its inputs and a priority', async () => {
    await tab('Workflows')
    await page.getByLabel('Add a folder').fill(folder)
    await page.getByRole('button', { name: 'Add', exact: true }).click()
    await expect
      .poll(() => page.getByRole('list', { name: 'Known workflows' }).textContent())
      .toMatch(/Deploy.*Soak/s)

    await workflow('deploy.yml').getByRole('button', { name: 'Run' }).click()
    const form = page.getByRole('form', { name: 'Run Deploy' })
    // It names a secret the farm has not stored: said before the run, with what to do.
    await expect
      .poll(() => form.getByRole('note').textContent())
      .toMatch(
        /It uses secrets\.PROD_KEY, which is not stored: empty in a run from here.*Set it under Secrets/,
      )
    // Set it, write-only: the list shows its name, the page never holds its value again.
    const secrets = page.getByRole('region', { name: 'Secrets' })
    await secrets.getByLabel('Name').fill('prod_key')
    await secrets.getByLabel('Value').fill('pr0d-k3y-sealed')
    await secrets.getByRole('button', { name: 'Set' }).click()
    await expect
      .poll(() => secrets.getByRole('list', { name: 'Stored secrets' }).textContent())
      .toMatch(/PROD_KEY/)
    await expect.poll(() => secrets.getByLabel('Value').inputValue()).toBe('')
    await expect.poll(() => form.getByRole('note').count()).toBe(0)
    await secrets.screenshot({ path: join(SHOTS, 'secrets.png') })
    expect(await page.content()).not.toContain('pr0d-k3y-sealed')
    // Required and empty: refused in the form, nothing sent.
    await form.getByRole('button', { name: 'Run workflow' }).click()
    await expect.poll(() => form.getByRole('alert').first().textContent()).toBe('ticket: required')
    await form.getByLabel('target').selectOption('prod')
    await form.getByLabel('dry-run').uncheck()
    await form.getByLabel('ticket').fill('REL-42')
    await form.getByLabel('priority').selectOption('high')
    await page.screenshot({ path: join(SHOTS, 'run-form.png') })
    await form.getByRole('button', { name: 'Run workflow' }).click()

    // The console goes to the queue; the run then shows in Runs and succeeds.
    await expect.poll(() => page.getByRole('tab', { selected: true }).textContent()).toMatch(/^Queue/)
    await tab('Runs')
    const runs = page.getByRole('list', { name: 'Runs' })
    await expect.poll(() => runs.textContent(), { timeout: 60_000 }).toMatch(/#1 Deploy.*succeeded/s)
    await runs.locator('[data-run-id="1"]').click()
    await expect
      .poll(() => page.getByRole('log', { name: 'Log' }).textContent())
      .toContain('deploying prod dry-run=false for REL-42')
    // The step got the stored value (15 characters), and the log shows it masked.
    await expect
      .poll(() => page.getByRole('log', { name: 'Log' }).textContent())
      .toContain('key=*** length=15')
    const db = openDatabase(dataDir)
    try {
      const rows = db.prepare('SELECT text FROM log_lines').all() as Array<{ text: string }>
      expect(rows.map((r) => r.text).join('\n')).not.toContain('pr0d-k3y-sealed')
    } finally {
      db.close()
    }
    expect(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).not.toContain('pr0d-k3y-sealed')
  }, 120_000)

  it('shows a job waiting for a slot with why, cancels the running job, and re-runs the failed one', async () => {
    await tab('Workflows')
    await workflow('soak.yml').getByRole('button', { name: 'Run' }).click()
    await page.getByRole('form', { name: 'Run Soak' }).getByRole('button', { name: 'Run workflow' }).click()

    // One of the two jobs runs on n3; the other waits for its only slot, and the queue says why.
    const waiting = page.getByRole('table', { name: 'Waiting jobs' })
    await expect
      .poll(() => waiting.textContent(), { timeout: 60_000 })
      .toMatch(/run #2 · (long|quick).*1 node fits; it is busy/s)
    await page.screenshot({ path: join(SHOTS, 'queue.png') })

    // Open the run from the queue, and wait for long to run (quick may have gone first).
    await waiting.getByRole('button').first().click()
    const jobs = page.getByRole('list', { name: 'Jobs' })
    const long = jobs.locator('[data-job="long"]')
    await expect.poll(() => long.textContent(), { timeout: 60_000 }).toMatch(/running/)
    await long.getByRole('button', { name: 'Cancel long' }).click()
    await expect
      .poll(() => long.textContent(), { timeout: 30_000 })
      .toMatch(/cancelled.*cancelled from the console/s)
    await expect
      .poll(() => jobs.locator('[data-job="quick"]').textContent(), { timeout: 60_000 })
      .toMatch(/succeeded/)
    await expect.poll(() => page.locator('.run-header').textContent()).toMatch(/cancelled/)
    // The log followed live, without a reload.
    const log = page.getByRole('log', { name: 'Log' })
    await expect.poll(() => log.textContent()).toMatch(/soaking.*quick one|quick one.*soaking/s)
    await page.screenshot({ path: join(SHOTS, 'cancelled-run.png') })

    // The cancelled job's container is gone from the host.
    const db = openDatabase(dataDir)
    const instance = new RunStore(db).instanceId()
    db.close()
    const left = await hostEngine('n3').listContainers({
      all: true,
      filters: { label: [`io.yardmaster.instance=${instance}`, 'io.yardmaster.run=2'] },
    })
    expect(left).toEqual([])

    // Re-run failed: long runs again, quick is taken from run 2.
    await page.getByRole('button', { name: 'Re-run failed' }).click()
    const runs = page.getByRole('list', { name: 'Runs' })
    await expect.poll(() => runs.locator('[data-run-id="3"]').count(), { timeout: 60_000 }).toBe(1)
    await runs.locator('[data-run-id="3"]').click()
    await expect
      .poll(() => jobs.locator('[data-job="quick"]').textContent(), { timeout: 30_000 })
      .toMatch(/succeeded.*reused from run 2 \(not run again\)/s)
    await expect
      .poll(() => jobs.locator('[data-job="long"]').textContent(), { timeout: 60_000 })
      .toMatch(/running/)
    await page.getByRole('button', { name: 'Cancel run' }).click()
    await expect
      .poll(() => page.locator('.run-header').textContent(), { timeout: 30_000 })
      .toMatch(/cancelled/)
    expect(errors).toEqual([])
  }, 240_000)
})
