#!/usr/bin/env node
// Bundles each entry point with esbuild: the extension host, the inference worker, the CLI (all
// Node, CommonJS) and the webviews (browser). Native modules (sharp, onnxruntime-node) stay
// external and ship in node_modules; `vscode` is provided by the host.
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
  // jsonc-parser's default (UMD) build loads its parts with a require esbuild cannot follow
  alias: { 'jsonc-parser': './node_modules/jsonc-parser/lib/esm/main.js' },
};

/** @type {import('esbuild').BuildOptions[]} */
const bundles = [
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  // the webviews run in the browser sandbox of a webview, as ES modules
  { entryPoints: ['webview/chat.ts', 'webview/heatmap.ts'], outdir: 'dist/webview', platform: 'browser', target: 'es2022', format: 'esm' },
];

await Promise.all(bundles.map((options) => build({ bundle: true, sourcemap: true, minify: production, logLevel: 'warning', ...options })));
