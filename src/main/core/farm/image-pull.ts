/**
 * Pulling an image onto a node's engine. One rule for every caller (a job's image, a node
 * operation): a pull that fails after it began ends its progress stream with an error line,
 * which dockerode's followProgress hands over as output, not as an error; here it is an error.
 */
import type Docker from 'dockerode'

export interface PullOptions {
  /** Registry login (`container.credentials`); sent in a header, never in a URL. */
  credentials?: { username: string; password: string } | null
  signal?: AbortSignal
}

export async function pullImage(docker: Docker, image: string, opts: PullOptions = {}): Promise<void> {
  const stream = await docker.pull(image, {
    ...(opts.credentials ? { authconfig: opts.credentials } : {}),
    ...(opts.signal ? { abortSignal: opts.signal } : {}),
  })
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }> = []) => {
      const failed = output.find((o) => o.error)
      if (err) reject(err)
      else if (failed) reject(new Error(failed.error))
      else resolve()
    }),
  )
}
