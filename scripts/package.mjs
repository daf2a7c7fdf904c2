#!/usr/bin/env node
// Packages the extension for one platform (default: this one) with @vscode/vsce: the ignore
// file is .vscodeignore plus the other platforms' onnxruntime and sharp binaries.
// Usage: node scripts/package.mjs [--target linux-x64|linux-arm64|win32-x64|win32-arm64|darwin-arm64] [-o FILE] [--list]
// --list prints the files the package would hold instead of writing it.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: `${process.platform}-${process.arch}` },
    o: { type: 'string' },
    list: { type: 'boolean', default: false },
  },
});
const [platform, arch] = values.target.split('-');
const all = [
  ['linux', 'x64'],
  ['linux', 'arm64'],
  ['win32', 'x64'],
  ['win32', 'arm64'],
  ['darwin', 'arm64'],
  ['darwin', 'x64'],
];
const others = all.filter(([p, a]) => p !== platform || a !== arch);
const extra = others.flatMap(([p, a]) => [
  `node_modules/onnxruntime-node/bin/napi-v*/${p}/${a}/**`,
  `node_modules/@img/sharp-${p}-${a}/**`,
  `node_modules/@img/sharp-libvips-${p}-${a}/**`,
]);
const ignore = join(tmpdir(), `prumerge-vscodeignore-${values.target}`);
writeFileSync(ignore, `${readFileSync('.vscodeignore', 'utf8')}\n${extra.join('\n')}\n`);
const out = values.o ?? `prumerge-vision-${values.target}.vsix`;
const args = values.list
  ? ['vsce', 'ls', '--ignoreFile', ignore]
  : [
      'vsce',
      'package',
      '--allow-missing-repository',
      '--no-rewrite-relative-links',
      '--skip-license',
      '--target',
      values.target,
      '--ignoreFile',
      ignore,
      '-o',
      out,
    ];
const r = spawnSync('npx', args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
