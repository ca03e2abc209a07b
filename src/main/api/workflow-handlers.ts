/** The workflows the console knows, and the folders it lists them from. */
import type { BackendContext } from './backend'
import { requireString } from './validate-args'

export function workflowHandlers({ workflows }: BackendContext) {
  return {
    'workflows.list': () => workflows.list(),
    'workflows.addFolder': (args: { folder: string }) => {
      workflows.addFolder(requireString(args, 'folder', 4096))
      return workflows.list()
    },
    'workflows.removeFolder': (args: { folder: string }) => {
      workflows.removeFolder(requireString(args, 'folder', 4096))
      return workflows.list()
    },
  }
}
