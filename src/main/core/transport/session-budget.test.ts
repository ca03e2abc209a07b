import { describe, expect, it } from 'vitest'
import { MAX_SESSIONS_PER_CONNECTION, SessionBudget } from './session-budget'

describe('SessionBudget', () => {
  it('grants up to the limit, then one waiter per session given back, in order', async () => {
    const b = new SessionBudget(2)
    const first = await b.take()
    const second = await b.take()
    const order: string[] = []
    const third = b.take().then((give) => (order.push('third'), give))
    const fourth = b.take().then((give) => (order.push('fourth'), give))
    await Promise.resolve()
    expect([b.open, b.queued, order]).toEqual([2, 2, []])
    first()
    first() // giving back twice frees one session only
    expect((await third, order)).toEqual(['third'])
    expect([b.open, b.queued]).toEqual([2, 1])
    second()
    ;(await fourth)()
    ;(await third)()
    expect([b.open, b.queued, order]).toEqual([0, 0, ['third', 'fourth']])
  })

  it('refuses waiters and later takes once the connection is gone', async () => {
    const b = new SessionBudget(1)
    await b.take()
    const waiting = b.take()
    b.close(new Error('the connection to n1 dropped'))
    await expect(waiting).rejects.toThrow('the connection to n1 dropped')
    await expect(b.take()).rejects.toThrow('the connection to n1 dropped')
  })

  it("defaults to OpenSSH's MaxSessions", () => {
    expect(new SessionBudget().limit).toBe(MAX_SESSIONS_PER_CONNECTION)
    expect(MAX_SESSIONS_PER_CONNECTION).toBe(10)
  })
})
