#!/usr/bin/env node
'use strict';
// The `prumerge` command: the CLI bundle that `npm run build` (run by `npm ci`) writes to dist/.
try {
  require.resolve('../dist/cli.js');
} catch {
  process.stderr.write('prumerge: dist/cli.js is missing; run `npm run build` in the repository first\n');
  process.exit(1);
}
require('../dist/cli.js');
