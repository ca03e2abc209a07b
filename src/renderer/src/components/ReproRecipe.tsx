import type { ReproRecipe } from '../../../shared/model'

/**
 * How to try a failed step again by hand: where it ran, with what, and its script as it ran. The
 * environment's values are not kept (some are secrets): only their names.
 */
export function ReproView({ recipe }: { recipe: ReproRecipe }) {
  return (
    <details className="repro">
      <summary>
        Reproduce step {recipe.step.index + 1} “{recipe.step.name}”
      </summary>
      <dl>
        <dt>node</dt>
        <dd>{recipe.node}</dd>
        {recipe.image && (
          <>
            <dt>image</dt>
            <dd>
              {recipe.image}
              {recipe.imageId && <span className="muted"> ({recipe.imageId})</span>}
            </dd>
          </>
        )}
        <dt>environment</dt>
        <dd>{recipe.env.length ? recipe.env.join(' ') : '—'}</dd>
      </dl>
      <p>Start a shell where it ran, then run the script in it:</p>
      <pre className="command">{reproCommand(recipe)}</pre>
      <pre className="script">{recipe.script}</pre>
    </details>
  )
}

/** The command that opens a shell like the step's: in its image on docker nodes, in a workspace on shell nodes. */
export function reproCommand(r: ReproRecipe): string {
  // Every value from the workflow is quoted: the command is for pasting into a terminal.
  const shell = r.shell === 'bash' || r.shell === 'sh' ? r.shell : 'sh'
  const cd = r.workingDirectory
    ? `/workspace/${r.workingDirectory.replace(/^\/workspace\/?/, '')}`.replace(/\/$/, '')
    : '/workspace'
  const engine = r.address ? `docker -H ${quote(`ssh://${r.address}`)}` : 'docker'
  if (r.image)
    return `${engine} run --rm -it -v "$PWD:/workspace" -w ${quote(cd)} ${quote(r.imageId ?? r.image)} ${shell}`
  const login = r.address
    ? `ssh -p ${quote(r.address.split(':').pop()!)} ${quote(r.address.replace(/:\d+$/, ''))}`
    : 'sh'
  return `${login}   # then: cd to a checkout of the repository and run the script with ${quote(r.shell)}`
}

/** A word for a POSIX shell: as it is when it is plain, else in single quotes. */
function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}
