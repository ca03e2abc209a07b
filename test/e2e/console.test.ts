/**
 * The real UI in real Chromium, served by the real `yardmaster serve`, over history made by
 * real runs on the lab.
 */
import { mkdirSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { cookieName } from '../../src/main/server/loopback-server'
import { cli, tempDir } from '../support/cli'
import { lab, REPO } from '../support/lab'
import { serve, type Served } from '../support/serve'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../support/chromium'

const fixture = (name: string) => join(REPO, 'test', 'fixtures', 'lab', name)

describe('the console in Chromium', () => {
  let dataDir: string
  let served: Served
  let browser: Browser

  beforeAll(async () => {
    dataDir = tempDir()
    const farm = lab().farmFile
    expect((await cli(['run', fixture('fails-first.yml'), '--farm', farm, '--data-dir', dataDir])).code).toBe(
      1,
    )
    expect((await cli(['run', fixture('two-hosts.yml'), '--farm', farm, '--data-dir', dataDir])).code).toBe(0)
    served = await serve(['--data-dir', dataDir, '--farm', farm])
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS }) // Playwright gives each launch a fresh profile
  })

  afterAll(async () => {
    await browser?.close()
    await served?.stop()
  })

  it('shows the runs, a run’s jobs with their nodes, and its log lines', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
    await page.goto(served.url)

    const runs = page.getByRole('list', { name: 'Runs' })
    await expect.poll(() => runs.getByRole('button').count()).toBe(2)
    await expect.poll(() => runs.textContent()).toMatch(/#2 two hosts.*succeeded.*#1 fails first.*failed/s)

    // The newest run opens first: jobs with the node each ran on, and the log.
    const jobs = page.getByRole('list', { name: 'Jobs' })
    await expect.poll(() => jobs.locator('[data-job="a"]').textContent()).toMatch(/node: n2/)
    await expect.poll(() => jobs.locator('[data-job="b"]').textContent()).toMatch(/node: n3.*needs: a/s)
    const log = page.getByRole('log', { name: 'Log' })
    await expect.poll(() => log.textContent()).toMatch(/a sees wf job-a on [0-9a-f]{12}/)
    await expect.poll(() => log.textContent()).toContain('b runs after a')

    // Open the failed run: its reason and the skipped job.
    await runs.locator('[data-run-id="1"]').click()
    await expect
      .poll(() => jobs.locator('[data-job="a"]').textContent())
      .toMatch(/failed.*exited with code 3/s)
    await expect
      .poll(() => jobs.locator('[data-job="b"]').textContent())
      .toMatch(/skipped.*needs job "a", which failed/s)
    await expect.poll(() => log.textContent()).toContain('about to fail')
    // How to reproduce it: where it ran, in which image (by id), and the script as it ran.
    const repro = page.locator('details.repro')
    await repro.locator('summary').click()
    await expect.poll(() => repro.textContent()).toMatch(/node\s*n2/)
    await expect.poll(() => repro.textContent()).toMatch(/lab\/busybox:1\s*\(sha256:[0-9a-f]{64}\)/)
    await expect
      .poll(() => repro.locator('pre.command').textContent())
      .toMatch(/^docker -H ssh:\/\/yardlab@127\.0\.0\.12:2222 run --rm -it .* sha256:[0-9a-f]{64} /)
    await expect.poll(() => repro.locator('pre.script').textContent()).toBe('echo "about to fail"; exit 3')
    await page.screenshot({ path: join(REPO, 'docs', 'screenshots', 'failed-run.png') })

    // Back to the successful run for the picture.
    await runs.locator('[data-run-id="2"]').click()
    await expect.poll(() => log.textContent()).toContain('b runs after a')
    mkdirSync(join(REPO, 'docs', 'screenshots'), { recursive: true })
    await page.screenshot({ path: join(REPO, 'docs', 'screenshots', 'console.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('shows a run started while the page is open, without a reload', async () => {
    const page = await browser.newPage()
    await page.goto(served.url)
    const runs = page.getByRole('list', { name: 'Runs' })
    await expect.poll(() => runs.getByRole('button').count()).toBe(2)
    expect(
      (await cli(['run', fixture('two-hosts.yml'), '--farm', lab().farmFile, '--data-dir', dataDir])).code,
    ).toBe(0)
    await expect.poll(() => runs.getByRole('button').count(), { timeout: 10_000 }).toBe(3)
    await expect.poll(() => runs.locator('[data-run-id="3"]').textContent()).toContain('succeeded')
    await page.close()
  })

  it('refuses a page request without the token', async () => {
    const page = await browser.newPage()
    const res = await page.goto(served.origin + '/')
    expect(res?.status()).toBe(401)
    expect(await page.textContent('body')).toContain('open the URL printed by `yardmaster serve`')
    const asset = await fetch(served.origin + '/index.html')
    expect(asset.status).toBe(401)
    await page.close()
  })

  it('refuses the API from another Origin or without the token', async () => {
    const wsUrl = served.origin.replace('http', 'ws') + '/api'
    const attempt = (url: string, headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers })
        ws.on('open', () => {
          ws.close()
          resolve(101)
        })
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('error', () => resolve(-1))
      })
    const cookie = `${cookieName(Number(new URL(served.origin).port))}=${served.token}`
    expect(await attempt(wsUrl, { Origin: served.origin, Cookie: cookie })).toBe(101)
    expect(await attempt(wsUrl, { Origin: 'http://evil.example', Cookie: cookie })).toBe(403)
    expect(await attempt(wsUrl, { Origin: served.origin })).toBe(403)
    expect(await attempt(`${wsUrl}?token=wrong-token`, { Origin: served.origin })).toBe(403)
    // A page request with the right token but a rebinding Host header is refused too.
    // (node:http, because fetch drops a Host header silently.)
    const rebound = await new Promise<number>((resolve, reject) =>
      request(served.url, { headers: { Host: 'attacker.example' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
        .on('error', reject)
        .end(),
    )
    expect(rebound).toBe(403)
  })
})
