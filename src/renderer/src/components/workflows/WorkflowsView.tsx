import { useState } from 'react'
import { useStore } from 'zustand'
import type { QueueStore } from '../../state/queue-store'
import { ActionError, useAction } from '../use-action'
import { RunForm } from './RunForm'
import { SecretsPanel } from './SecretsPanel'

/** The workflows the console knows, each with Run (its form) and its problems; add a folder. */
export function WorkflowsView({ queue, onQueued }: { queue: QueueStore; onQueued: () => void }) {
  const workflows = useStore(queue, (s) => s.workflows)
  const [open, setOpen] = useState<string | null>(null)
  const [queued, setQueued] = useState<string | null>(null)
  const [folder, setFolder] = useState('')
  const add = useAction((f: string) => queue.getState().addFolder(f))
  return (
    <section className="workflows-view" aria-label="Workflows">
      <header className="section-head">
        <h2>Workflows</h2>
        <form
          className="add-folder"
          onSubmit={(e) => {
            e.preventDefault()
            if (folder.trim()) void add.run(folder.trim()).then(() => setFolder(''))
          }}
        >
          <label htmlFor="folder">Add a folder</label>
          <input
            id="folder"
            placeholder="/path/to/repo (its .github/workflows are listed)"
            value={folder}
            onChange={(e) => setFolder(e.target.value)}
          />
          <button type="submit" disabled={add.busy}>
            Add
          </button>
        </form>
      </header>
      <ActionError error={add.error} />
      {queued && (
        <p className="notice" role="status">
          {queued}
        </p>
      )}
      {workflows.length === 0 && (
        <p className="empty">
          No workflows yet: add a folder above, or run one from a terminal (
          <code>yardmaster run file.yml</code>) and it appears here.
        </p>
      )}
      <ul className="workflow-list" aria-label="Known workflows">
        {workflows.map((w) => (
          <li key={w.file} className="workflow" data-workflow={w.file}>
            <div className="workflow-head">
              <strong>{w.name ?? w.file.split('/').pop()}</strong>
              <span className="path" title={w.file}>
                {w.file}
              </span>
              <span className="sub">{w.source === 'folder' ? 'from a folder' : 'run before'}</span>
              <button
                className={open === w.file ? 'selected' : 'primary'}
                disabled={w.problems.length > 0}
                title={w.problems.length ? 'Fix the problems below first' : 'Queue a run of this workflow'}
                onClick={() => setOpen(open === w.file ? null : w.file)}
              >
                {open === w.file ? 'Close' : 'Run'}
              </button>
            </div>
            {w.problems.length > 0 && (
              <ul className="problems" aria-label="Problems">
                {w.problems.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            )}
            {open === w.file && (
              <RunForm
                workflow={w}
                queue={queue}
                onQueued={(id) => {
                  setOpen(null)
                  setQueued(
                    `Queued ${w.name ?? w.file} (queue entry ${id}); it shows in Queue and then in Runs.`,
                  )
                  onQueued()
                }}
              />
            )}
          </li>
        ))}
      </ul>
      <SecretsPanel queue={queue} />
    </section>
  )
}
