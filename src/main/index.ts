/**
 * The Electron shell: one window, the IPC transport of the shared API, nothing else. All the
 * work is in core; this file only wires it to a window. The renderer is sandboxed, isolated,
 * without Node, under a strict Content-Security-Policy.
 */
import { join } from 'node:path'
import { app, BrowserWindow, ipcMain, session, shell } from 'electron'
import { createAppBackend, type AppBackend } from './api/app-backend'
import type { Backend } from './api/backend'
import { defaultDataDir } from './core/data-dir'
import { defaultFarm } from './core/farm/default-farm'
import { loadFarmFile } from './core/farm/farm-file'
import { CONTENT_SECURITY_POLICY } from './server/loopback-server'
import pkg from '../../package.json'

async function createBackend(): Promise<AppBackend> {
  const dataDir = process.env.YARDMASTER_DATA_DIR ?? app.getPath('userData') ?? defaultDataDir()
  const farmFile = process.env.YARDMASTER_FARM
  const farm = farmFile ? loadFarmFile(farmFile) : await defaultFarm()
  // In a dev checkout the Node build of better-sqlite3 stays for the CLI and tests; scripts/start.mjs
  // builds one for Electron's ABI and passes it here. Packaged apps are rebuilt in place.
  const nativeBinding = process.env.YARDMASTER_SQLITE_BINDING
  // Host keys: the farm's, the user's and the data dir's known_hosts; new hosts are trusted from the UI (node.trust).
  return createAppBackend({ dataDir, farm, version: pkg.version, nativeBinding })
}

function createWindow(backend: Backend): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    title: 'Yardmaster',
    show: false,
    webPreferences: {
      preload: join(__dirname, '../preload/index.js'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  })
  win.once('ready-to-show', () => win.show())
  // Links open in the user's browser, never in a new Electron window.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:/.test(url)) void shell.openExternal(url)
    return { action: 'deny' }
  })
  win.webContents.on('will-navigate', (e) => e.preventDefault())
  const unsubscribe = backend.subscribe((event, payload) => {
    if (!win.isDestroyed()) win.webContents.send('yardmaster:event', event, payload)
  })
  win.on('closed', unsubscribe)
  if (process.env.ELECTRON_RENDERER_URL) void win.loadURL(process.env.ELECTRON_RENDERER_URL)
  else void win.loadFile(join(__dirname, '../renderer/index.html'))
  return win
}

void app.whenReady().then(async () => {
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] },
    })
  })
  const appBackend = await createBackend()
  const { backend } = appBackend
  ipcMain.handle('yardmaster:invoke', (_e, method: unknown, args: unknown) =>
    backend.invoke(String(method), args),
  )
  createWindow(backend)
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow(backend)
  })
  // Before quitting: the health monitor stops, the nodes' connections and the history close.
  let closed = false
  app.on('will-quit', (e) => {
    if (closed) return
    e.preventDefault()
    void appBackend
      .close()
      .catch(() => {})
      .finally(() => {
        closed = true
        app.quit()
      })
  })
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})
