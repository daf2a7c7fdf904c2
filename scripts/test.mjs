#!/usr/bin/env node
// Runs the *.test.ts files under the folders named (default: test/ and src/, everything) with
// node's test runner and tsx (Node 20's runner takes no glob patterns). Arguments that start with
// -- go to the runner, e.g. --test-name-pattern=PruMerge.
//   node scripts/test.mjs                 everything (npm test runs this after its checks)
//   node scripts/test.mjs test/unit       one layer (docs/architecture.md, "Tests"): unit (pure, no model
//                                         built, no process spawned: npm run test:quick), model, worker,
//                                         extension, cli, e2e, repo
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(path) {
  if (statSync(path).isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(path, { withFileTypes: true }).flatMap((e) => (e.name === 'node_modules' ? [] : testFiles(join(path, e.name))));
}

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const roots = args.filter((a) => !a.startsWith('--'));
const files = (roots.length > 0 ? roots : ['test', 'src']).flatMap(testFiles).sort();
if (files.length === 0) {
  process.stderr.write(`no *.test.ts under ${roots.join(', ')}\n`);
  process.exit(2);
}
const { status } = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...flags, ...files], { stdio: 'inherit' });
process.exit(status ?? 1);
