import type { HealthSample, NodeLiveView } from '../../../shared/model'
import { bytes, clockTime, millis, percent, skew } from '../format'

/** The node's latest health sample, one figure per cell; `—` where it was not measured. */
export function SampleFacts({ node, now }: { node: NodeLiveView; now: number }) {
  const s = node.sample
  if (!s) return <p className="muted small">No sample yet: the node has not answered a probe.</p>
  // A sample older than two probe intervals is shown as what it is: the last known figures.
  const stale = now - s.at > 15_000
  return (
    <>
      <dl className="sample" aria-label={`Latest sample of ${node.name}`}>
        <Fact term="load" value={load(s)} />
        <Fact term="CPU" value={percent(s.cpuPct)} />
        <Fact term="memory" value={s.memUsedPct === null ? '—' : `${percent(s.memUsedPct)} used`} />
        <Fact term="clock skew" value={skew(s.skewMs)} />
        <Fact term="free on /" value={bytes(s.rootFreeBytes)} />
        {node.executor === 'docker' && <Fact term="free on data root" value={bytes(s.dataFreeBytes)} />}
        {/* A shell node's jobs of ours are its job workspaces: there are no containers to count. */}
        <Fact term={node.executor === 'shell' ? 'jobs' : 'containers'} value={containers(s, node.executor)} />
        {node.executor === 'docker' && <Fact term="engine ping" value={millis(s.engineMs)} />}
      </dl>
      {stale && <p className="stale small">last answered at {clockTime(s.at)}</p>}
    </>
  )
}

function Fact({ term, value }: { term: string; value: string }) {
  return (
    <div>
      <dt>{term}</dt>
      <dd>{value}</dd>
    </div>
  )
}

function load(s: HealthSample): string {
  if (s.load1 === null) return '—'
  return s.cpus === null ? s.load1.toFixed(2) : `${s.load1.toFixed(2)} / ${s.cpus} cpus`
}

function containers(s: HealthSample, executor: NodeLiveView['executor']): string {
  if (s.containersOurs === null && s.containersOthers === null) return '—'
  if (executor === 'shell') return `${s.containersOurs ?? '—'} running`
  const ours = `${s.containersOurs ?? '—'} ours`
  return `${ours}, ${s.containersOthers ?? '—'} other`
}
