import { useEffect, useRef, useState } from 'react'
import type { ContainerView, ImageView, NodeLiveView, PruneReport } from '../../../shared/model'
import { bytes, when } from '../format'
import type { NodeStore } from '../state/node-store'
import { CopyImageForm } from './CopyImageForm'
import { ActionError, useAction } from './use-action'

/**
 * What is on a docker node's engine: containers (ours marked), images, copying an image here
 * from another engine, and Prune, which removes only what Yardmaster left behind, after asking.
 */
export function EngineContents({ store, node }: { store: NodeStore; node: NodeLiveView }) {
  const containers = useAction(store.getState().containers)
  const images = useAction(store.getState().images)
  const answering = node.health === 'online' || node.health === 'degraded'
  const load = () => {
    void containers.run(node.name)
    void images.run(node.name)
  }
  // Loaded once when the node is shown and answers; Refresh loads again. The component is keyed
  // by node, so each node starts over.
  const autoLoaded = useRef(false)
  useEffect(() => {
    if (autoLoaded.current || !answering || node.executor !== 'docker') return
    autoLoaded.current = true
    load()
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [answering])

  if (node.executor !== 'docker') {
    return <p className="muted small">A shell node runs jobs in workspaces, without containers or images.</p>
  }
  const busy = containers.busy || images.busy
  return (
    <>
      <div className="action-row">
        <button onClick={load} disabled={busy}>
          {busy ? 'Loading…' : containers.result || images.result ? 'Refresh' : 'Show containers and images'}
        </button>
        {!answering && !containers.result && (
          <span className="muted small">{node.name} is not answering; asking may take a while</span>
        )}
      </div>
      <h4>Containers</h4>
      <ActionError error={containers.error} />
      {containers.result && <ContainerTable containers={containers.result} />}
      <h4>Images</h4>
      <ActionError error={images.error} />
      {images.result && <ImageTable images={images.result} containers={containers.result ?? []} />}
      <h4>Copy an image here</h4>
      <CopyImageForm store={store} node={node} onCopied={() => void images.run(node.name)} />
      <h4>Prune</h4>
      <Prune store={store} node={node} onPruned={load} />
    </>
  )
}

function Ours({ ours }: { ours: boolean }) {
  return <span className={ours ? 'tag ours' : 'tag others'}>{ours ? 'ours' : 'not ours'}</span>
}

function ContainerTable({ containers }: { containers: ContainerView[] }) {
  if (!containers.length) return <p className="muted small">No containers.</p>
  return (
    <table className="grid" aria-label="Containers">
      <thead>
        <tr>
          <th>name</th>
          <th>image</th>
          <th>status</th>
          <th>made by</th>
        </tr>
      </thead>
      <tbody>
        {containers.map((c) => (
          <tr key={c.id}>
            <td className="path" title={c.id}>
              {c.name}
            </td>
            <td className="path">{c.image}</td>
            <td>{c.status}</td>
            <td>
              <Ours ours={c.managed} />
              {c.managed && c.runId && (
                <span className="muted small">
                  {' '}
                  run #{c.runId}
                  {c.jobKey ? ` · ${c.jobKey}` : ''}
                </span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function ImageTable({ images, containers }: { images: ImageView[]; containers: ContainerView[] }) {
  if (!images.length) return <p className="muted small">No images.</p>
  const usedByUs = new Set(containers.filter((c) => c.managed).map((c) => c.image))
  return (
    <table className="grid" aria-label="Images">
      <thead>
        <tr>
          <th>image</th>
          <th>size</th>
          <th>created</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {images.map((i) => (
          <tr key={i.id}>
            <td className="path" title={i.id}>
              {i.tags.length ? i.tags.join(', ') : '<none>'}
            </td>
            <td>{bytes(i.sizeBytes)}</td>
            <td>{when(i.createdAt)}</td>
            <td>
              {i.dangling && <span className="tag others">dangling</span>}
              {i.tags.some((t) => usedByUs.has(t)) && <span className="tag ours">used by our jobs</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function Prune({ store, node, onPruned }: { store: NodeStore; node: NodeLiveView; onPruned: () => void }) {
  const [confirming, setConfirming] = useState(false)
  const prune = useAction(store.getState().prune)
  const go = async () => {
    setConfirming(false)
    if (await prune.run(node.name)) onPruned()
  }
  return (
    <div className="action">
      {!confirming ? (
        <div className="action-row">
          <button onClick={() => setConfirming(true)} disabled={prune.busy}>
            {prune.busy ? 'Pruning…' : 'Prune…'}
          </button>
          <span className="muted small">
            removes only what Yardmaster left behind: stopped job containers, its volumes, dangling images
          </span>
        </div>
      ) : (
        <div className="confirm" role="group" aria-label="Confirm prune">
          <span>
            Remove Yardmaster’s stopped containers, its volumes and dangling images on{' '}
            <strong>{node.name}</strong>?
          </span>
          <button className="danger" onClick={() => void go()}>
            Prune {node.name}
          </button>
          <button onClick={() => setConfirming(false)}>Cancel</button>
        </div>
      )}
      {prune.result && <PruneResult report={prune.result} />}
      <ActionError error={prune.error} />
    </div>
  )
}

function PruneResult({ report: r }: { report: PruneReport }) {
  const removed = r.containers.length + r.volumes.length + r.images.length
  return (
    <div className="action-result" role="status" aria-label="Prune report">
      <p>
        {removed === 0
          ? 'Nothing to remove.'
          : `Removed ${removed} item${removed === 1 ? '' : 's'}, ${bytes(r.reclaimedBytes)} reclaimed.`}
      </p>
      <ul className="plain">
        {r.containers.map((c) => (
          <li key={c.id}>
            container <code>{c.name}</code>
          </li>
        ))}
        {r.volumes.map((v) => (
          <li key={v}>
            volume <code>{v}</code>
          </li>
        ))}
        {r.images.map((i) => (
          <li key={i}>
            image <code>{i}</code>
          </li>
        ))}
      </ul>
      {r.kept.length > 0 && (
        <>
          <p>Kept:</p>
          <ul className="plain">
            {r.kept.map((k, i) => (
              <li key={i}>
                <code>{k.what}</code>: {k.reason}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  )
}
