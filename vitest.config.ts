import { defineConfig } from 'vitest/config'

// GitHub's workflow parser imports JSON without an import attribute, which Node's ESM loader
// refuses; inlining lets vite transform it, as the app's bundler does.
const server = { deps: { inline: [/@actions\/workflow-parser/, /@actions\/expressions/] } }

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/unit/**/*.test.ts'],
          environment: 'node',
          server,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          server,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // The lab's hosts are shared: files run one at a time so fault injection in one cannot
          // disturb another.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          server,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
    coverage: {
      provider: 'v8',
      include: ['src/main/core/**/*.ts'],
      exclude: ['**/*.test.ts'],
      reporter: ['text-summary', 'text'],
      thresholds: { lines: 90 },
    },
  },
})
