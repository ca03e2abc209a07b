/**
 * The Nodes view in real Chromium, served by the real `yardmaster serve` on the lab farm: live
 * health from the monitor, drain and resume through the UI, a connection test, a probe of a
 * node's capabilities, an image copied between nodes; trust on first use of a host no
 * known_hosts file knows.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { arch } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/cli'
import { host, hostEngine, lab, REPO } from '../support/lab'
import { serve, type Served } from '../support/serve'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../support/chromium'

describe('the Nodes view in Chromium', () => {
  let served: Served
  let browser: Browser

  beforeAll(async () => {
    // A fresh data dir: admin states live there, so nothing this test does outlives it.
    served = await serve(['--data-dir', tempDir(), '--farm', lab().farmFile])
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  })

  afterAll(async () => {
    await browser?.close()
    await served?.stop()
  })

  const card = (page: Page, name: string) => page.getByRole('article', { name: `Node ${name}`, exact: true })
  const detail = (page: Page, name: string) => page.getByRole('region', { name: `Node ${name} details` })

  /** A page on the Nodes view with the lab's three nodes listed; errors of the page collected. */
  async function nodesPage(): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
    await page.goto(served.url)
    await page.getByRole('tab', { name: 'Nodes' }).click()
    await expect.poll(() => page.getByRole('list', { name: 'Nodes' }).getByRole('article').count()).toBe(3)
    return { page, errors }
  }

  it('shows the lab’s nodes live, drains and resumes one, tests a connection', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
    await page.goto(served.url)

    // Runs is the view the console opens on; the Nodes tab switches.
    await expect
      .poll(() => page.getByRole('tab', { name: 'Runs' }).getAttribute('aria-selected'))
      .toBe('true')
    await page.getByRole('tab', { name: 'Nodes' }).click()
    await expect
      .poll(() => page.getByRole('tab', { name: 'Nodes' }).getAttribute('aria-selected'))
      .toBe('true')

    // Every node online, with a load figure from the health monitor (it probes every 5 s).
    const list = page.getByRole('list', { name: 'Nodes' })
    await expect.poll(() => list.getByRole('article').count()).toBe(3)
    for (const name of ['n1', 'n2', 'n3']) {
      await expect
        .poll(() => card(page, name).textContent(), { timeout: 20_000 })
        .toMatch(/online.*active.*load\s*\d+\.\d\d \/ \d+ cpus/s)
    }
    await expect.poll(() => card(page, 'n1').textContent()).toContain('yardlab@127.0.0.11:2222')

    // Drain n3 with a reason: the badge says so at once.
    await card(page, 'n3').getByRole('button', { name: 'n3', exact: true }).click()
    const n3 = detail(page, 'n3')
    await expect.poll(() => n3.getByRole('button', { name: 'Resume' }).isDisabled()).toBe(true)
    await n3.getByLabel('Reason (optional)').fill('disk swap (e2e)')
    await n3.getByRole('button', { name: 'Drain' }).click()
    // Draining at once; with no job of ours on it, the next probe (within 5 s) finds it drained,
    // and then it is cordoned: either state is right by the time the page is read.
    await expect.poll(() => card(page, 'n3').textContent()).toMatch(/(draining|cordoned).*disk swap \(e2e\)/s)
    await expect.poll(() => n3.getByRole('button', { name: 'Resume' }).isDisabled()).toBe(false)
    await expect.poll(() => page.getByRole('tab', { name: 'Nodes' }).textContent()).toMatch(/Nodes\s*1/)
    await expect
      .poll(() => n3.getByRole('list', { name: 'Recent events' }).textContent())
      .toMatch(/active → draining.*disk swap \(e2e\)/s)
    // Resume brings it back into service, from either.
    await n3.getByRole('button', { name: 'Resume' }).click()
    await expect.poll(() => card(page, 'n3').textContent()).toMatch(/online.*active/s)
    await expect.poll(() => n3.getByRole('button', { name: 'Resume' }).isDisabled()).toBe(true)

    // Test the connection to n1: handshake and round trip, in milliseconds.
    await card(page, 'n1').getByRole('button', { name: 'n1', exact: true }).click()
    const n1 = detail(page, 'n1')
    await n1.getByRole('button', { name: 'Test connection' }).click()
    await expect
      .poll(() => n1.getByRole('status', { name: 'Connection test result' }).textContent(), {
        timeout: 20_000,
      })
      .toMatch(/handshake \d+(\.\d)? ms.*round trip \d+(\.\d)? ms/s)

    // Its engine: containers and images (the lab's two images at least).
    await expect
      .poll(() => n1.getByRole('table', { name: 'Images' }).textContent(), { timeout: 20_000 })
      .toContain('lab/busybox:1')
    await expect
      .poll(() => n1.getByRole('region', { name: 'Engine' }).textContent())
      .toMatch(/Containers.*Images/s)
    await expect.poll(() => n1.getByRole('button', { name: /^(Loading…)$/ }).count()).toBe(0)

    // CPU is measured between two samples: wait for a few, so the picture has every figure and
    // each chart a line.
    for (const name of ['n1', 'n2', 'n3']) {
      await expect.poll(() => card(page, name).textContent(), { timeout: 20_000 }).toMatch(/CPU\s*\d+ %/)
      const line = card(page, name).getByRole('img', { name: /^CPU/ }).locator('polyline').first()
      const points = async () => (await line.getAttribute('points', { timeout: 500 }).catch(() => null)) ?? ''
      await expect
        .poll(async () => (await points()).split(' ').filter(Boolean).length, { timeout: 30_000 })
        .toBeGreaterThanOrEqual(3)
    }
    mkdirSync(join(REPO, 'docs', 'screenshots'), { recursive: true })
    await page.screenshot({ path: join(REPO, 'docs', 'screenshots', 'nodes.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('probes a node on demand: its labels by where they come from, and where they disagree', async () => {
    const { page, errors } = await nodesPage()
    await card(page, 'n3').getByRole('button', { name: 'n3', exact: true }).click()
    const panel = detail(page, 'n3').getByRole('region', { name: 'Capabilities' })
    await panel.getByRole('button', { name: 'Probe', exact: true }).click()
    const result = panel.getByRole('group', { name: 'Capabilities of n3' })
    const labels = (name: string) =>
      result.getByRole('list', { name }).getByRole('listitem').allTextContents()
    // The lab declares n3 [linux, arm64]; its engine says linux, and carries the label arch=arm64.
    await expect.poll(() => labels('Declared labels'), { timeout: 20_000 }).toEqual(['linux', 'arm64'])
    expect(await labels('Automatic labels')).toEqual(
      expect.arrayContaining(['self-hosted', 'linux', 'docker']),
    )
    expect(await labels('Engine labels')).toEqual(
      expect.arrayContaining(Object.entries(host('n3').engineLabels).map(([k, v]) => `${k}=${v}`)),
    )
    expect(await result.getByRole('definition').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^linux \/ /), expect.stringMatching(/^Docker \S+ on /)]),
    )
    // The lab's engines run on this machine: on an x64 one, the declared arm64 is a disagreement.
    if (arch() === 'x64') {
      expect(await labels('Automatic labels')).not.toContain('x64')
      await expect
        .poll(() => result.getByRole('list', { name: 'Notes' }).textContent())
        .toMatch(/declared architecture arm64 but the engine reports x86_64/)
    }
    expect(errors).toEqual([])
    await page.close()
  })

  it('copies an image to a node from another, says what was sent, and lists it there', async () => {
    // A tag of the test's own: the lab's images have another ID on each engine, and other tests
    // count on that, so they are never copied over each other.
    const image = 'lab/e2e-copy:1'
    const [n1Engine, n2Engine] = [hostEngine('n1'), hostEngine('n2')]
    const untag = (docker: typeof n1Engine) =>
      docker
        .getImage(image)
        .remove()
        .catch((e: { statusCode?: number }) => {
          if (e.statusCode !== 404) throw e
        })
    await untag(n2Engine) // what an interrupted run may have left
    await n1Engine.getImage('lab/busybox:1').tag({ repo: 'lab/e2e-copy', tag: '1' })
    try {
      const { page, errors } = await nodesPage()
      await card(page, 'n2').getByRole('button', { name: 'n2', exact: true }).click()
      const n2 = detail(page, 'n2')
      const images = n2.getByRole('table', { name: 'Images' })
      await expect.poll(() => images.textContent(), { timeout: 20_000 }).toContain('lab/busybox:1')
      expect(await images.textContent()).not.toContain(image)

      const form = n2.getByRole('form', { name: 'Copy an image to n2' })
      await form.getByLabel('Image', { exact: true }).fill(image)
      await form.getByLabel('From', { exact: true }).selectOption('n1')
      await form.getByRole('button', { name: 'Copy', exact: true }).click()
      const result = form.getByRole('status', { name: 'Image copy result' })
      await expect
        .poll(() => result.textContent(), { timeout: 30_000 })
        .toMatch(/copied lab\/e2e-copy:1 from n1: \d+(\.\d)? (B|KiB|MiB) in \d+(\.\d)? m?s/)
      // The list is read again, and n2's own engine has the very image n1 has.
      await expect.poll(() => images.textContent(), { timeout: 20_000 }).toContain(image)
      expect((await n2Engine.getImage(image).inspect()).Id).toBe(
        (await n1Engine.getImage(image).inspect()).Id,
      )

      // Again: n2 has it, nothing is sent.
      await form.getByRole('button', { name: 'Copy', exact: true }).click()
      await expect
        .poll(() => result.textContent(), { timeout: 30_000 })
        .toContain('already present (same image id): nothing sent')

      // An image n1 does not have: refused, in the backend's words, next to the form.
      await form.getByLabel('Image', { exact: true }).fill('lab/e2e-nowhere:1')
      await form.getByRole('button', { name: 'Copy', exact: true }).click()
      await expect
        .poll(() => form.getByRole('alert').textContent(), { timeout: 30_000 })
        .toContain('image lab/e2e-nowhere:1 is not on n1')
      expect(errors).toEqual([])
      await page.close()
    } finally {
      await untag(n1Engine)
      await untag(n2Engine)
    }
  })
})

describe('trust on first use in the console', () => {
  let served: Served
  let browser: Browser

  beforeAll(async () => {
    // The lab's farm with an empty known_hosts and a fresh data dir: no file knows the hosts.
    const dir = tempDir('ym-e2e-tofu-')
    const knownHosts = join(dir, 'known_hosts')
    writeFileSync(knownHosts, '')
    const farm = join(dir, 'farm.yml')
    writeFileSync(
      farm,
      readFileSync(lab().farmFile, 'utf8').replace(/^knownHosts: .*$/m, `knownHosts: ${knownHosts}`),
    )
    served = await serve(['--data-dir', join(dir, 'data'), '--farm', farm])
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  })

  afterAll(async () => {
    await browser?.close()
    await served?.stop()
  })

  it('shows an unknown host’s fingerprint, as ssh-keygen prints it, and trusts it once asked', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } })
    await page.goto(served.url)
    await page.getByRole('tab', { name: 'Nodes' }).click()
    const n1Card = page.getByRole('article', { name: 'Node n1', exact: true })
    await expect.poll(() => n1Card.textContent(), { timeout: 20_000 }).toMatch(/unreachable.*host key/is)

    await n1Card.getByRole('button', { name: 'n1', exact: true }).click()
    const n1 = page.getByRole('region', { name: 'Node n1 details' })
    await n1.getByRole('button', { name: 'Check host key' }).click()
    // The oracle is OpenSSH itself, on the host's own public key.
    const expected = /SHA256:[A-Za-z0-9+/]+/.exec(
      execFileSync('ssh-keygen', ['-lf', host('n1').hostKeyPub], { encoding: 'utf8' }),
    )![0]
    const verdict = n1.getByRole('status').filter({ hasText: 'No known_hosts file knows this host' })
    await expect.poll(() => verdict.textContent(), { timeout: 20_000 }).toContain(expected)

    await page.screenshot({ path: join(REPO, 'docs', 'screenshots', 'host-key.png') })

    await verdict.getByRole('button', { name: 'Trust this key' }).click()
    await expect.poll(() => n1.getByRole('status').filter({ hasText: 'recorded' }).count()).toBe(1)
    await expect.poll(() => n1Card.textContent(), { timeout: 20_000 }).toMatch(/online.*active/s)
    // Recorded in the data dir's known_hosts; n2 and n3 stay refused until trusted too.
    await expect
      .poll(() => page.getByRole('article', { name: 'Node n2', exact: true }).textContent())
      .toMatch(/unreachable/)
    await page.close()
  })
})
