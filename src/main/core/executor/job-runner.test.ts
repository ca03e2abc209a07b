import { describe, expect, it } from 'vitest'
import { timeoutText } from './job-runner'

describe('timeoutText', () => {
  it('says a limit in minutes, or in seconds under a minute, naming the setting', () => {
    expect(timeoutText(5)).toBe('5 min (timeout-minutes)')
    expect(timeoutText(360)).toBe('360 min (timeout-minutes)')
    expect(timeoutText(1.5)).toBe('1.5 min (timeout-minutes)')
    expect(timeoutText(0.02)).toBe('1.2 s (timeout-minutes)')
  })
})
