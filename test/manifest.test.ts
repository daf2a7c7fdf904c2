import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildSynthetic } from '../src/builder/buildModel';
import { insideFolder, loadManifest, ModelFolderError } from '../src/pipeline/modelManifest';
import { scratchDir } from './helpers/checkpoints';

describe('model.json: the loader checks before it trusts', () => {
  let dir = '';
  before(async () => {
    dir = join(scratchDir('manifest'), 'tiny');
    await buildSynthetic('tiny', 1, { out: dir, dtype: 'fp32' });
  });

  const editManifest = (edit: (m: Record<string, unknown>) => void): string => {
    const copy = join(scratchDir('manifest'), 'copy');
    cpSync(dir, copy, { recursive: true });
    const path = join(copy, 'model.json');
    const m = JSON.parse(readFileSync(path, 'utf8'));
    edit(m);
    writeFileSync(path, JSON.stringify(m));
    return copy;
  };

  it('loads a fresh build, hashes included', async () => {
    const m = await loadManifest(dir, { verify: true });
    assert.equal(m.randomWeights, true);
    assert.equal(m.source, 'synthetic:tiny:1');
  });

  it('is deterministic: the same shape and seed give byte-identical files', async () => {
    const again = join(scratchDir('manifest'), 'again');
    await buildSynthetic('tiny', 1, { out: again, dtype: 'fp32' });
    const files = (d: string): unknown => JSON.parse(readFileSync(join(d, 'model.json'), 'utf8')).files;
    assert.deepEqual(files(again), files(dir));
  });

  it('refuses a folder without model.json', async () => {
    await assert.rejects(loadManifest(scratchDir('empty')), /not a model folder.*prumerge build/);
  });

  it('refuses a manifest from another version', async () => {
    await assert.rejects(loadManifest(editManifest((m) => (m['version'] = 99))), /different version .* rebuild/);
  });

  it('refuses file names that leave the folder', async () => {
    const copy = editManifest((m) => {
      (m['files'] as Record<string, unknown>)['../../etc/passwd'] = { bytes: 1, sha256: '' };
    });
    await assert.rejects(loadManifest(copy), (e: unknown) => e instanceof ModelFolderError && /outside the model folder/.test(e.message));
    assert.throws(() => insideFolder('/models/m', '/etc/passwd'), ModelFolderError);
  });

  it('notices a missing, truncated or altered file', async () => {
    const missing = editManifest(() => {});
    rmSync(join(missing, 'decoder.onnx.data'));
    await assert.rejects(loadManifest(missing), /missing decoder\.onnx\.data/);
    const grown = editManifest(() => {});
    appendFileSync(join(grown, 'vision.onnx.data'), 'x');
    await assert.rejects(loadManifest(grown), /vision\.onnx\.data .* bytes, the manifest says/);
    const altered = editManifest(() => {});
    const path = join(altered, 'embed_tokens.bin');
    const bytes = readFileSync(path);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(path, bytes);
    await loadManifest(altered); // same size: only hashing can tell
    await assert.rejects(loadManifest(altered, { verify: true }), /does not match its sha256/);
  });
});
