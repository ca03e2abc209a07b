/**
 * The embedded default farm: this machine alone, so a newcomer can run the bundled pipelines
 * with no configuration. It uses the local Docker engine when one answers, else a local shell.
 */
import { arch, platform } from 'node:os'
import { githubArch, githubOs } from './capabilities'
import { localDocker } from '../transport/docker-over-ssh'
import { defaultKnownHosts, normalizeLabels } from './farm-file'
import { LOCAL_HOST, type Farm } from './farm-model'

/** Image for jobs without `container:` on the local engine; YARDMASTER_LOCAL_IMAGE overrides it. */
export const LOCAL_DEFAULT_IMAGE = 'debian:bookworm-slim'

/** GitHub's names for this machine's OS and architecture, which its runners carry as labels. */
export function runnerLabels(): string[] {
  return [githubOs(platform()) ?? platform(), githubArch(arch()) ?? arch()]
}

export async function defaultFarm(probeMs = 1500): Promise<Farm> {
  const docker = await engineAnswers(probeMs)
  return {
    file: null,
    knownHosts: defaultKnownHosts(),
    platforms: {},
    nodes: [
      {
        name: 'local',
        host: LOCAL_HOST,
        port: 0,
        user: '',
        identityFile: null,
        executor: docker ? 'docker' : 'shell',
        labels: normalizeLabels([...runnerLabels(), 'local']),
        slots: 2,
        defaultImage: docker ? (process.env.YARDMASTER_LOCAL_IMAGE ?? LOCAL_DEFAULT_IMAGE) : null,
        source: null,
      },
    ],
  }
}

async function engineAnswers(ms: number): Promise<boolean> {
  const timer = new Promise<false>((r) => setTimeout(() => r(false), ms).unref())
  return Promise.race([
    localDocker()
      .ping()
      .then(() => true)
      .catch(() => false),
    timer,
  ])
}
