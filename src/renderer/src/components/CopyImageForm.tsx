import { useId, useState, type FormEvent } from 'react'
import { useStore } from 'zustand'
import type { ImageCopyView, NodeLiveView } from '../../../shared/model'
import { chosenSource, copySources, describeCopy, shortImageId } from '../state/node-logic'
import type { NodeStore } from '../state/node-store'
import { ActionError, useAction } from './use-action'

/**
 * `yardmaster node <name> copy-image <image> --from <node|local>`: puts an image on this node
 * from another node's engine or this machine's, without a registry (docker save | docker load).
 */
export function CopyImageForm({
  store,
  node,
  onCopied,
}: {
  store: NodeStore
  node: NodeLiveView
  onCopied: () => void
}) {
  const nodes = useStore(store, (s) => s.nodes)
  const sources = copySources(nodes, node)
  const [image, setImage] = useState('')
  const [picked, setPicked] = useState<string | null>(null)
  const from = chosenSource(sources, picked)
  const copy = useAction(store.getState().copyImage)
  // Each control beside its label rather than inside it: a label's name would then include the
  // control's value ("From n1").
  const id = useId()
  const name = image.trim()
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!name || from === null) return
    const r = await copy.run(node.name, name, from)
    if (r?.outcome === 'copied') onCopied()
  }
  if (!sources.length)
    return <p className="muted small">There is no other Docker engine in the farm to copy an image from.</p>
  return (
    <form
      className="action copy-form"
      onSubmit={(e) => void submit(e)}
      aria-label={`Copy an image to ${node.name}`}
    >
      <div className="action-row">
        <div className="field grow">
          <label htmlFor={`${id}-image`}>Image</label>
          <input
            id={`${id}-image`}
            value={image}
            onChange={(e) => setImage(e.target.value)}
            disabled={copy.busy}
            placeholder="repository:tag"
            spellCheck={false}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-from`}>From</label>
          <select
            id={`${id}-from`}
            value={from ?? ''}
            onChange={(e) => setPicked(e.target.value)}
            disabled={copy.busy}
          >
            {sources.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={copy.busy || !name || from === null}>
          {copy.busy ? 'Copying…' : 'Copy'}
        </button>
      </div>
      <p className="muted small">
        {copy.busy
          ? `sending ${name} from ${sources.find((s) => s.value === from)?.label ?? from} to ${node.name}; a large image takes a while`
          : `streams it from the chosen engine into ${node.name}’s (docker save | docker load), without a registry`}
      </p>
      {copy.result && <CopyResult result={copy.result} />}
      <ActionError error={copy.error} />
    </form>
  )
}

function CopyResult({ result }: { result: ImageCopyView }) {
  const words = describeCopy(result)
  return (
    <div className="action-result" role="status" aria-label="Image copy result">
      <p>
        {words.summary} <span className="muted small">(image {shortImageId(result.imageId)})</span>
      </p>
      {words.replaced && <p className="small">{words.replaced}</p>}
    </div>
  )
}
