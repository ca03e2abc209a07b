/**
 * The Electron shell: one window, the IPC transport of the shared API, nothing else. All the
 * work is in core; this file only wires it to a window. The renderer is sandboxed, isolated,
 * without Node, under a strict Content-Security-Policy. IPC is answered only for the main frame of
 * our own windows showing our own renderer (ipc-sender.ts); every permission is denied; a packaged
 * build ignores the development overrides (ELECTRON_RENDERER_URL, YARDMASTER_SQLITE_BINDING).
 */
import { join } from 'node:path'
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  safeStorage,
  session,
  shell,
  type IpcMainInvokeEvent,
} from 'electron'
import { createAppBackend, type AppBackend } from './api/app-backend'
import type { Backend } from './api/backend'
import { defaultDataDir } from './core/data-dir'
import { ENV_KEY, envKeySource, keychainKeySource } from './core/secrets/secret-store'
import { defaultFarm } from './core/farm/default-farm'
import { loadFarmFile } from './core/farm/farm-file'
import { CONTENT_SECURITY_POLICY } from './server/loopback-server'
import { devRendererUrl, isAllowedSender, REFUSED_SENDER } from './ipc-sender'
import pkg from '../../package.json'

async function createBackend(): Promise<AppBackend> {
  const dataDir = process.env.YARDMASTER_DATA_DIR ?? app.getPath('userData') ?? defaultDataDir()
  const farmFile = process.env.YARDMASTER_FARM
  const farm = farmFile ? loadFarmFile(farmFile) : await defaultFarm()
  // In a dev checkout the Node build of better-sqlite3 stays for the CLI and tests; scripts/start.mjs
  // builds one for Electron's ABI and passes it here. Packaged apps are rebuilt in place
  // (electron-builder's npmRebuild) and load their own build: the override is ignored there.
  const nativeBinding = app.isPackaged ? undefined : process.env.YARDMASTER_SQLITE_BINDING
  // Host keys: the farm's, the user's and the data dir's known_hosts; new hosts are trusted from the UI (node.trust).
  // Stored secrets: sealed by the OS keychain, unless YARDMASTER_SECRETS_KEY is set (then `serve`
  // and the CLI on the same data dir can read them too).
  const secretKeys = process.env[ENV_KEY] ? envKeySource() : keychainKeySource(dataDir, safeStorage)
  return createAppBackend({ dataDir, farm, version: pkg.version, nativeBinding, secretKeys })
}

/** The bundled renderer; the only files whose pages may call the backend. */
const RENDERER_DIR = join(__dirname, '../renderer')
/** electron-vite's dev server, in an unpackaged app only; a packaged build loads RENDERER_DIR. */
const DEV_URL = devRendererUrl(process.env.ELECTRON_RENDERER_URL, app.isPackaged)
/** The webContents of the windows we created (their ids). */
const ourWindows = new Set<number>()

/** Whether an IPC request comes from the top frame of one of our windows, showing our renderer. */
function fromOurRenderer(e: IpcMainInvokeEvent): boolean {
  const frame = e.senderFrame // null once the frame navigated or was destroyed
  const isOurMainFrame =
    frame !== null &&
    !frame.detached &&
    frame.parent === null &&
    !e.sender.isDestroyed() &&
    ourWindows.has(e.sender.id) &&
    frame.processId === e.sender.mainFrame.processId &&
    frame.routingId === e.sender.mainFrame.routingId
  return isAllowedSender({
    url: frame?.url ?? '',
    isOurMainFrame,
    rendererDir: RENDERER_DIR,
    devUrl: DEV_URL,
    isPackaged: app.isPackaged,
  })
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
  const contentsId = win.webContents.id
  ourWindows.add(contentsId)
  win.once('ready-to-show', () => win.show())
  // Links open in the user's browser, never in a new Electron window.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:/.test(url)) void shell.openExternal(url)
    return { action: 'deny' }
  })
  // The page never navigates away from the renderer it was loaded with.
  win.webContents.on('will-navigate', (e) => e.preventDefault())
  const unsubscribe = backend.subscribe((event, payload) => {
    if (!win.isDestroyed()) win.webContents.send('yardmaster:event', event, payload)
  })
  win.on('closed', () => {
    unsubscribe()
    ourWindows.delete(contentsId)
  })
  if (DEV_URL) void win.loadURL(DEV_URL)
  else void win.loadFile(join(RENDERER_DIR, 'index.html'))
  return win
}

void app.whenReady().then(async () => {
  // The console needs no permission (camera, microphone, notifications, geolocation, clipboard,
  // HID/serial/USB...): every request and every check is denied.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  session.defaultSession.setPermissionCheckHandler(() => false)
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] },
    })
  })
  const appBackend = await createBackend()
  const { backend } = appBackend
  ipcMain.handle('yardmaster:invoke', (e, method: unknown, args: unknown) => {
    if (!fromOurRenderer(e)) {
      console.warn(`yardmaster: refused an IPC request from ${e.senderFrame?.url || 'a frame that is gone'}`)
      return REFUSED_SENDER
    }
    return backend.invoke(String(method), args)
  })
  createWindow(backend)
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow(backend)
  })
  // Before quitting: with jobs running, the user says what becomes of them. Left running, the app
  // ends as if it had died and takes them over when it starts again; otherwise they are cancelled,
  // the health monitor stops, the nodes' connections and the history close.
  let closed = false
  app.on('will-quit', (e) => {
    if (closed) return
    e.preventDefault()
    const running = appBackend.orchestrator.runningJobs()
    const choice = running
      ? dialog.showMessageBoxSync({
          type: 'question',
          buttons: ['Leave them running', 'Cancel them', 'Keep Yardmaster open'],
          defaultId: 0,
          cancelId: 2,
          message: `${running} job${running === 1 ? ' is' : 's are'} running`,
          detail:
            'Left running, they go on on their nodes, and Yardmaster takes them over when it starts again ' +
            '(or a yardmaster serve on the same data folder does). Cancelled, they stop now and what they made on their nodes is removed.',
        })
      : 1
    if (choice === 2) return
    if (choice === 0) {
      closed = true
      app.exit(0)
      return
    }
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
