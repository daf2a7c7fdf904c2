/** Files generated from a source in the repository are what that source makes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';

it('the committed merge kernels are what mergeKernels.wat compiles to', () => {
  const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build-wasm.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stderr}run \`npm run wasm\` and commit the result`);
});
