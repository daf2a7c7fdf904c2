#!/usr/bin/env node
// Bundles each entry point with esbuild. Native modules (sharp, and onnxruntime-node once the
// engine lands) stay external and ship in node_modules; `vscode` is provided by the host.
// Entries are added here as their code lands: the extension host (src/extension) and the
// webviews (webview/) next.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const production = process.argv.includes('--production');

/** @type {import('esbuild').BuildOptions} */
const node = {
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['sharp', 'onnxruntime-node', 'vscode'],
  define: { PRUMERGE_VERSION: JSON.stringify(version) },
};

/** @type {import('esbuild').BuildOptions[]} */
const bundles = [
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  { ...node, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
];

await Promise.all(
  bundles.map((options) =>
    build({ bundle: true, sourcemap: true, minify: production, logLevel: 'warning', ...options }),
  ),
);
