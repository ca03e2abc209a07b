/**
 * The secrets a run gets: those its workflow names, from the farm's store, with what the
 * caller gave (`--secret`) taking precedence. Read when the run is about to start, so a value
 * set meanwhile is the one used, and a run whose workflow names no stored secret never asks for
 * the key.
 */
import { readFileSync } from 'node:fs'
import { secretsUsed } from '../workflow/secrets-used'
import type { SecretStore } from './secret-store'

export function secretsForRun(
  store: SecretStore | null,
  workflowFile: string,
  given: Record<string, string> = {},
): Record<string, string> {
  if (!store) return given
  const have = new Set(Object.keys(given).map((n) => n.toUpperCase()))
  const wanted = secretsUsed(readFileSync(workflowFile, 'utf8')).filter((n) => !have.has(n.toUpperCase()))
  return { ...store.reveal(wanted), ...given }
}
