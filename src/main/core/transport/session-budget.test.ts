import { describe, expect, it } from 'vitest'
import { MAX_SESSIONS_PER_CONNECTION, SessionBudget } from './session-budget'

describe('SessionBudget', () => {
  it('grants up to the limit, then none until a session is given back (once per session)', () => {
    const b = new SessionBudget(2)
    const first = b.take()!
    const second = b.take()!
    expect([b.open, b.free, b.take()]).toEqual([2, 0, null])
    first()
    first() // giving back twice frees one session only
    expect([b.open, b.free]).toEqual([1, 1])
    const third = b.take()
    expect(third).toBeInstanceOf(Function)
    expect(b.take()).toBeNull()
    second()
    third!()
    expect([b.open, b.free]).toEqual([0, 2])
  })

  it('grants nothing once the connection is gone', () => {
    const b = new SessionBudget(2)
    const held = b.take()!
    b.close()
    expect([b.free, b.take()]).toEqual([0, null])
    held() // a channel that ends afterwards changes nothing
    expect(b.take()).toBeNull()
  })

  it("defaults to OpenSSH's MaxSessions", () => {
    expect(new SessionBudget().limit).toBe(MAX_SESSIONS_PER_CONNECTION)
    expect(MAX_SESSIONS_PER_CONNECTION).toBe(10)
  })
})
