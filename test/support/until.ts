/** Waits until `check` holds, looking every `everyMs`; fails naming `what` after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 60_000,
  everyMs = 100,
): Promise<void> {
  const t0 = Date.now()
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`never happened: ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
