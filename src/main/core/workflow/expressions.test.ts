import { describe, expect, it } from 'vitest'
import { evaluateExpression, truthy } from './expressions'

describe('evaluateExpression', () => {
  it("unescapes every '' of a string literal, as GitHub does", () => {
    expect(evaluateExpression("'a''b''c'", {})).toBe("a'b'c")
    // What GitHub's parser makes of `run: echo '${{ steps.a.conclusion }}' | grep success`.
    expect(
      evaluateExpression("format('echo ''{0}'' | grep success', steps.a.conclusion)", {
        steps: { a: { conclusion: 'success' } },
      }),
    ).toBe("echo 'success' | grep success")
    expect(evaluateExpression("''''''", {})).toBe("''")
  })

  it('keeps strings that hold no quote as they are', () => {
    expect(evaluateExpression("format('{0}-{1}', 'a', 'b')", {})).toBe('a-b')
    expect(evaluateExpression("contains('x''y', '''')", {})).toBe(true)
  })

  it('reads contexts and status functions', () => {
    expect(evaluateExpression('github.ref', { github: { ref: 'refs/heads/main' } })).toBe('refs/heads/main')
    expect(
      truthy(evaluateExpression('failure()', {}, { success: false, failure: true, cancelled: false })),
    ).toBe(true)
  })
})
