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
          // Everything that uses the lab: the integration tests and the UI's in Chromium (e2e).
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          server,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // The lab's hosts are shared: files run one at a time so fault injection in one cannot
          // disturb another, and one's jobs are not on a host another needs to itself (the e2e
          // tests were a project of their own, run beside these: their jobs broke tests that
          // count a host's containers, and slowed engines past limits on a busy machine).
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
