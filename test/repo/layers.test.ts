/**
 * The layer check (`npm run check:layers`, .dependency-cruiser.cjs) on small planted trees: it must
 * fail on a cycle and on each kind of crossing, and pass what the layers allow.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { scratchDir } from '../helpers/checkpoints';

const repo = resolve(__dirname, '..', '..');
const cli = join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

/** Runs the project's layer check over a tree of `files` (path -> source); its exit status and report. */
function check(files: Record<string, string>): { status: number | null; report: string } {
  const dir = scratchDir('layers');
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'commonjs', strict: true } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const run = spawnSync(process.execPath, [cli, 'src', '--config', join(repo, '.dependency-cruiser.cjs'), '--output-type', 'err'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { status: run.status, report: run.stdout + run.stderr };
}

describe('the layer check', () => {
  it('passes imports that go down the layers, and pipeline types in the extension', () => {
    const { status, report } = check({
      'src/common/errors.ts': 'export class UserError extends Error {}\n',
      'src/format/modelManifest.ts': "import { UserError } from '../common/errors';\nexport const e = UserError;\n",
      'src/pipeline/engine/stages.ts': "import { e } from '../../format/modelManifest';\nexport type Hooks = { e: typeof e };\n",
      'src/extension/chat.ts': "import type { Hooks } from '../pipeline/engine/stages';\nexport const h: Hooks | undefined = undefined;\n",
    });
    assert.equal(status, 0, report);
  });

  it('fails on an import cycle', () => {
    const { status, report } = check({
      'src/common/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
      'src/common/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
    });
    assert.notEqual(status, 0);
    assert.match(report, /no-circular/);
  });

  it('fails when a lower layer imports a higher one', () => {
    const { status, report } = check({
      'src/builder/buildModel.ts': 'export const build = 1;\n',
      'src/pipeline/engine/engine.ts': "import { build } from '../../builder/buildModel';\nexport const e = build;\n",
    });
    assert.notEqual(status, 0);
    assert.match(report, /layer-pipeline/);
  });

  it('fails when the families import the pipeline', () => {
    const { status, report } = check({
      'src/pipeline/image/anyres.ts': 'export const tiles = 1;\n',
      'src/families/layout/next.ts': "import { tiles } from '../../pipeline/image/anyres';\nexport const n = tiles;\n",
    });
    assert.notEqual(status, 0);
    assert.match(report, /layer-families/);
  });

  it('fails when the extension imports a value of the pipeline', () => {
    const { status, report } = check({
      'src/pipeline/engine/engine.ts': 'export class Engine {}\n',
      'src/extension/service.ts': "import { Engine } from '../pipeline/engine/engine';\nexport const e = new Engine();\n",
    });
    assert.notEqual(status, 0);
    assert.match(report, /extension-no-pipeline-values/);
  });

  it('fails when the extension reaches into the worker past its client', () => {
    const { status, report } = check({
      'src/worker/main.ts': 'export const serve = 1;\n',
      'src/extension/service.ts': "import { serve } from '../worker/main';\nexport const s = serve;\n",
    });
    assert.notEqual(status, 0);
    assert.match(report, /extension-layers/);
  });
});
