/**
 * The only bridge between the sandboxed renderer and the main process: `invoke` a method of the
 * shared API by name, `on` an event. No raw ipcRenderer reaches the page.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron'
import type { Envelope, YardmasterBridge } from '../shared/api'

const bridge: YardmasterBridge = {
  invoke: (method: string, args: unknown): Promise<Envelope<unknown>> =>
    ipcRenderer.invoke('yardmaster:invoke', method, args) as Promise<Envelope<unknown>>,
  on: (listener: (event: string, payload: unknown) => void): (() => void) => {
    const handler = (_e: IpcRendererEvent, event: string, payload: unknown) => listener(event, payload)
    ipcRenderer.on('yardmaster:event', handler)
    return () => ipcRenderer.removeListener('yardmaster:event', handler)
  },
}

contextBridge.exposeInMainWorld('yardmaster', bridge)
