import { describe, expect, it } from 'vitest'
import { secretsUsed } from './secrets-used'

describe('secretsUsed', () => {
  it('finds the secrets a workflow names, in both notations, once each, GITHUB_TOKEN aside', () => {
    const text = [
      'env: { KEY: "${{ secrets.DEPLOY_KEY }}" }',
      "run: echo ${{ secrets['npm-token'] }} ${{ secrets.DEPLOY_KEY }}",
      'token: ${{ secrets.GITHUB_TOKEN }}',
      'if: ${{ secrets . SLACK_HOOK != "" }}',
    ].join('\n')
    expect(secretsUsed(text)).toEqual(['DEPLOY_KEY', 'SLACK_HOOK', 'npm-token'])
    expect(secretsUsed('steps: [{ run: echo secretsfoo }]')).toEqual([])
  })
})
