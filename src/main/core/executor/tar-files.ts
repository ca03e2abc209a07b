/**
 * A tar of a few small files in one private folder, as the Docker engine's archive endpoint
 * (`PUT /containers/{id}/archive`) takes them: the way a step's script reaches its container
 * without a command line. The folder is mode 0700 and the files 0600, owned by the user the
 * steps run as.
 */
import { pack } from 'tar-stream'

export interface FileOwner {
  uid: number
  gid: number
}

export interface TarFile {
  /** Absolute path in the container, inside `dir`. */
  path: string
  content: string
}

export async function tarOf(files: readonly TarFile[], dir: string, owner: FileOwner): Promise<Buffer> {
  const tar = pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    tar.on('data', (c) => void chunks.push(c as Buffer))
    tar.on('end', resolve)
    tar.on('error', reject)
  })
  const mtime = new Date()
  // Paths relative to `/`, where the archive is unpacked; the engine makes missing parents.
  const rel = (p: string) => p.replace(/^\/+/, '')
  tar.entry({ name: `${rel(dir)}/`, type: 'directory', mode: 0o700, mtime, ...owner })
  for (const f of files) {
    if (!f.path.startsWith(`${dir}/`)) throw new Error(`${f.path} is not inside ${dir}`)
    tar.entry({ name: rel(f.path), type: 'file', mode: 0o600, mtime, ...owner }, Buffer.from(f.content))
  }
  tar.finalize()
  await done
  return Buffer.concat(chunks)
}
