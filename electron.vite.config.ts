import { resolve } from 'node:path'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'electron-vite'

export default defineConfig({
  main: {
    build: {
      // GitHub's workflow parser is ESM that imports JSON without an import attribute: Node cannot
      // load it as is, so it is bundled (transformed) rather than left external.
      externalizeDeps: { exclude: ['@actions/workflow-parser', '@actions/expressions'] },
      rollupOptions: {
        // index: the Electron shell; cli: the same core under plain Node (bin/yardmaster.cjs);
        // bench-kit: the pieces benchmarks time (bench/*.mjs).
        input: {
          index: resolve('src/main/index.ts'),
          cli: resolve('src/main/cli/main.ts'),
          'bench-kit': resolve('src/main/bench-kit.ts'),
        },
      },
    },
  },
  preload: {
    build: { rollupOptions: { input: { index: resolve('src/preload/index.ts') } } },
  },
  renderer: {
    root: resolve('src/renderer'),
    // Minified: the same bundle is served to browsers by `yardmaster serve`.
    build: { minify: true, rollupOptions: { input: { index: resolve('src/renderer/index.html') } } },
    plugins: [react()],
  },
})
