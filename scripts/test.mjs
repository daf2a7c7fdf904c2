#!/usr/bin/env node
// Runs every *.test.ts under test/ and src/ with node's test runner and tsx (Node 20's runner
// takes no glob patterns). Extra arguments go to the runner, e.g. --test-name-pattern=PruMerge.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(path);
    return e.name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = ['test', 'src'].flatMap(testFiles).sort();
const { status } = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(status ?? 1);
