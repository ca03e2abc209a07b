import { describe, expect, it } from 'vitest'
import { describeNode, isLocal, LOCAL_HOST, type FarmNode } from './farm-model'
import { farmNode } from '../../../../test/support/farm-node'

const ssh: FarmNode = farmNode('n1', { host: '10.0.0.5', port: 2222 })
const local: FarmNode = { ...ssh, name: 'here', host: LOCAL_HOST, user: '', port: 0 }

describe('farm model', () => {
  it('tells this machine from SSH nodes by host "local"', () => {
    expect(isLocal(local)).toBe(true)
    expect(isLocal(ssh)).toBe(false)
    expect(isLocal({ ...ssh, host: 'localhost' })).toBe(false)
  })

  it('describes nodes for messages', () => {
    expect(describeNode(local)).toBe('here (this machine)')
    expect(describeNode(ssh)).toBe('n1 (ci@10.0.0.5:2222)')
  })
})
