#!/usr/bin/env node
// The yardmaster command under plain Node. The code is the bundle electron-vite builds.
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')

const bundle = join(__dirname, '..', 'out', 'main', 'cli.js')
if (!existsSync(bundle)) {
  console.error(`yardmaster is not built yet: run \`npm run build\` in ${join(__dirname, '..')}`)
  process.exit(2)
}
require(bundle)
  .main(process.argv.slice(2))
  .then((code) => process.exit(code))
