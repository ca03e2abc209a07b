// Flat config. The import-direction rules encode docs/ARCHITECTURE.md:
// renderer -> shared; api -> core -> shared; transports (server, cli, index, preload) -> api/core/shared.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import reactHooks from 'eslint-plugin-react-hooks'
import tseslint from 'typescript-eslint'

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] })

export default tseslint.config(
  { ignores: ['out/**', 'coverage/**', 'node_modules/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: restrict([
      {
        group: ['**/main/**', '**/renderer/**', '**/preload/**'],
        message: 'src/shared imports nothing but itself.',
      },
      {
        group: ['node:*', 'electron', 'react', 'react-dom'],
        message: 'src/shared must run anywhere: no Node, no DOM libraries.',
      },
    ]),
  },
  {
    files: ['src/main/core/**/*.ts'],
    rules: restrict([
      { group: ['electron', 'react', 'react-dom', 'zustand'], message: 'core is framework-free.' },
      {
        group: ['**/api/**', '**/server/**', '**/cli/**', '**/renderer/**', '**/preload/**'],
        message: 'core imports only core and shared.',
      },
    ]),
  },
  {
    files: ['src/main/api/**/*.ts'],
    rules: restrict([
      { group: ['electron'], message: 'api is transport-free.' },
      {
        group: ['**/server/**', '**/cli/**', '**/renderer/**', '**/preload/**'],
        message: 'api imports only core and shared.',
      },
    ]),
  },
  {
    files: ['src/renderer/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      ...restrict([
        {
          group: ['**/main/**', '**/preload/**'],
          message: 'The renderer reaches the backend only through its API client.',
        },
        { group: ['node:*', 'electron'], message: 'The renderer is sandboxed: no Node, no Electron.' },
      ]),
    },
  },
  {
    files: ['src/preload/**/*.ts'],
    rules: restrict([
      {
        group: ['**/main/**', '**/renderer/**'],
        message: 'The preload only bridges; it imports shared types.',
      },
    ]),
  },
  {
    files: ['bin/**/*.cjs', 'scripts/**/*.mjs', 'bench/**/*.mjs'],
    languageOptions: {
      globals: { require: 'readonly', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
)
