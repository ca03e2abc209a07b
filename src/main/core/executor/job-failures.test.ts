import { describe, expect, it } from 'vitest'
import { ImageUnavailableError } from './docker-executor'
import { infrastructureReason, JobSetupError } from './job-failures'
import type { FarmNode } from '../farm/farm-model'

const node = { name: 'n1', host: 'h', port: 22, user: 'u' } as FarmNode
const engine = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode })

describe('infrastructureReason', () => {
  it('blames the node for a lost connection, a failed engine or a full disk', () => {
    expect(infrastructureReason(new Error('Not connected'))).toBe('Not connected')
    expect(infrastructureReason(new Error('read ECONNRESET\n    at TCP.onStreamRead'))).toBe(
      'read ECONNRESET',
    )
    expect(infrastructureReason(engine(500, 'no space left on device'))).toBe(
      'the engine failed: no space left on device',
    )
  })

  it('blames the job for what it asked: an image nobody has, a bad container spec, its setup', () => {
    expect(infrastructureReason(engine(404, 'no such image'))).toBeNull()
    expect(infrastructureReason(engine(400, 'invalid volume specification'))).toBeNull()
    expect(infrastructureReason(new JobSetupError('no image'))).toBeNull()
    expect(infrastructureReason(new ImageUnavailableError(node, 'x:1', 'no registry'))).toBeNull()
    expect(infrastructureReason('a string')).toBeNull()
  })

  it('keeps reasons short', () => {
    expect(infrastructureReason(new Error('x'.repeat(1000)))).toHaveLength(300)
  })
})
