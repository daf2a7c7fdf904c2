/** The package: what the .vsix holds, that its extension bundle loads, and that package.json agrees with the code. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseReading } from '../../src/shared/reduceMode';
import { AUTO_REDUCTION, REDUCTION_CHOICES } from '../../src/shared/reductionChoices';

const ROOT = join(__dirname, '..', '..');

it(
  "the linux-x64 package ships the bundles, the demo model and this platform's native modules only",
  { skip: process.platform !== 'linux' || process.arch !== 'x64' },
  () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--target', 'linux-x64', '--list'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    for (const f of [
      'dist/extension.js',
      'dist/worker.js',
      'dist/cli.js',
      'dist/webview/chat.js',
      'dist/webview/heatmap.js',
      'media/chat.css',
      'media/icon.svg',
      'media/readme/chat-and-heatmap.png', // the README's picture, shown on the extension's page
      'models/demo/model.json',
      'models/demo/decoder.onnx.data',
      'models/catalog.json',
      'package.json',
    ]) {
      assert.ok(files.includes(f), `missing ${f}`);
    }
    assert.ok(
      files.some((f) => /^node_modules\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/.test(f)),
      'onnxruntime for linux-x64',
    );
    assert.ok(
      files.some((f) => f.startsWith('node_modules/@img/sharp-libvips-linux-x64/')),
      'libvips for linux-x64',
    );
    assert.ok(files.includes('node_modules/semver/package.json'), 'sharp needs semver at run time');
    const unwanted = files.filter(
      (f) =>
        /^(src|test|scripts|webview|bench|docs|\.e2e|test-results)\//.test(f) ||
        (/\.ts$/.test(f) && !f.endsWith('.d.ts')) ||
        /\.map$/.test(f) ||
        /\/(win32|darwin)\/|linux\/arm64|sharp-(win32|darwin)/.test(f),
    );
    assert.deepEqual(unwanted, []);
  },
);

it('the extension bundle loads in plain Node with every module it needs (vscode stands in)', () => {
  // a bundled dependency whose require esbuild could not follow fails here, not only in VS Code
  const script = `
    const Module = require('module');
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (request === 'vscode') return new Proxy({}, { get: () => function () { return {}; } });
      return load.call(this, request, ...rest);
    };
    const ext = require(${JSON.stringify(join(ROOT, 'dist', 'extension.js'))});
    if (typeof ext.activate !== 'function') throw new Error('no activate');
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

it('the defaultReduction setting offers auto and the reductions the chat and heatmap menus offer, each one the engine reads', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const setting = pkg.contributes.configuration.properties['prumergeVision.defaultReduction'];
  // and first, the default: the reading chosen for the model's tower
  assert.deepEqual(setting.enum, [AUTO_REDUCTION, ...REDUCTION_CHOICES.map((c) => c.value)]);
  assert.equal(setting.default, AUTO_REDUCTION);
  assert.equal(setting.enumDescriptions.length, setting.enum.length);
  for (const c of REDUCTION_CHOICES) assert.doesNotThrow(() => parseReading(c.value), c.value);
});

it("the walkthrough suggests the catalog's suggestions, by name and for the same machines (one source, no drift)", () => {
  const catalog = JSON.parse(readFileSync(join(ROOT, 'models', 'catalog.json'), 'utf8')) as { name: string; suggestedFor?: string }[];
  const suggested = catalog.filter((e) => e.suggestedFor);
  assert.ok(
    suggested.some((e) => e.suggestedFor === 'no GPU'),
    'the catalog names a model for machines without a GPU',
  );
  const table = readFileSync(join(ROOT, 'media', 'walkthrough', 'model.md'), 'utf8');
  const rows = table.split('\n').filter((l) => /^\| [^-]/.test(l) && !l.startsWith('| machine'));
  assert.deepEqual(
    rows.map((r) => r.split('|').map((c) => c.trim())[1]),
    suggested.map((e) => e.suggestedFor),
  );
  suggested.forEach((e, i) => assert.ok(rows[i]!.includes(e.name), `${rows[i]} names ${e.name}`));
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const step = manifest.contributes.walkthroughs[0].steps.find((s: { id: string }) => s.id === 'model');
  for (const e of suggested) assert.ok(step.description.includes(e.name.replace(/ \(.*\)$/, '')), `the walkthrough step names ${e.name}`);
  assert.ok(!/TinyLLaVA/.test(step.description + table), 'no suggestion the catalog does not make');
});
