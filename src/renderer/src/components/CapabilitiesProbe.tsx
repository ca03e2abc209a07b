import type { NodeLiveView, NodeStatusView } from '../../../shared/model'
import { bytes, clockTime } from '../format'
import { asSentence, engineLine, hostLine, labelGroups, osArch } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'
import { Labels } from './NodeCard'
import { ActionError, useAction } from './use-action'

/**
 * `yardmaster nodes` for one node, on demand: what it is (OS, architecture, cores, memory,
 * disk), the labels `runs-on` is matched against and where each comes from, and where the farm
 * file and the probe disagree.
 */
export function CapabilitiesProbe({ store, node }: { store: NodeStore; node: NodeLiveView }) {
  const probe = useAction(store.getState().probe)
  const s = probe.result
  return (
    <div className="action">
      <div className="action-row">
        <button onClick={() => void probe.run(node.name)} disabled={probe.busy}>
          {probe.busy ? 'Probing…' : 'Probe'}
        </button>
        <span className="muted small">
          {s?.facts
            ? `probed at ${clockTime(s.facts.probedAt)}; a job’s runs-on is matched against all the labels below`
            : 'asks the node what it is and which labels it offers to runs-on'}
        </span>
      </div>
      <ActionError error={probe.error} />
      {s && <ProbeResult status={s} />}
    </div>
  )
}

function ProbeResult({ status: s }: { status: NodeStatusView }) {
  const c = s.capabilities
  const groups = labelGroups(c)
  const facts = s.facts
  const docker = s.executor === 'docker'
  return (
    <div className="probe-result" role="group" aria-label={`Capabilities of ${s.name}`}>
      {!s.reachable && (
        <p className="action-error" role="alert">
          Could not probe {s.name}: {asSentence(s.unreachableReason ?? 'no reason given')} The labels below
          come from the farm file alone.
        </p>
      )}
      {s.reachable && (
        <dl className="sample cap-sample" aria-label={`Probed facts of ${s.name}`}>
          <Fact term="OS / arch" value={osArch(c)} />
          <Fact term="cores" value={c.cpus === null ? '—' : String(c.cpus)} />
          <Fact term="memory" value={bytes(c.memoryBytes)} />
          <Fact term={docker ? 'free on data root' : 'free on /'} value={bytes(c.diskFreeBytes)} />
        </dl>
      )}
      <dl className="cap-facts">
        <LabelRow term="declared" name="Declared labels" labels={groups.declared} hint="in the farm file" />
        <LabelRow
          term="automatic"
          name="Automatic labels"
          labels={groups.automatic}
          hint="from the probe: self-hosted, OS, architecture, docker, gpu"
        />
        {(docker || groups.engine.length > 0) && (
          <LabelRow
            term="engine labels"
            name="Engine labels"
            labels={groups.engine}
            hint="the engine’s own labels (dockerd --label), as key=value"
          />
        )}
        {facts?.engine && (
          <div>
            <dt>engine</dt>
            <dd>{engineLine(facts.engine)}</dd>
          </div>
        )}
        {!docker && facts?.host && (
          <div>
            <dt>host</dt>
            <dd>{hostLine(facts.host)}</dd>
          </div>
        )}
      </dl>
      {c.notes.length > 0 && <Lines name="Notes" tone="warn" lines={c.notes} />}
      {facts && facts.problems.length > 0 && <Lines name="Problems" tone="bad" lines={facts.problems} />}
    </div>
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

function LabelRow({
  term,
  name,
  labels,
  hint,
}: {
  term: string
  name: string
  labels: string[]
  hint: string
}) {
  return (
    <div>
      <dt title={hint}>{term}</dt>
      <dd>{labels.length ? <Labels labels={labels} name={name} /> : <span className="muted">none</span>}</dd>
    </div>
  )
}

function Lines({ name, tone, lines }: { name: string; tone: 'warn' | 'bad'; lines: string[] }) {
  return (
    <ul className="node-status" aria-label={name}>
      {lines.map((l, i) => (
        <li key={i} className={`tone-${tone}`}>
          {l}
        </li>
      ))}
    </ul>
  )
}
