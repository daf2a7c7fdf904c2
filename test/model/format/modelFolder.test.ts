import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildSynthetic } from '../../../src/builder/buildModel';
import { onnx } from 'onnx-proto';
import { Engine } from '../../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../../src/shared/reduceMode';
import { insideFolder, loadManifest, ModelFolderError, sha256File } from '../../../src/format/modelManifest';
import { scratchDir } from '../../helpers/checkpoints';

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

  it("preprocesses for the synthetic tower's own image size, so the model answers (the tiny tower takes 56 px)", async () => {
    const m = await loadManifest(dir);
    assert.equal(m.preprocess.cropWidth, 56);
    const engine = await Engine.load(dir, { ep: 'cpu' });
    try {
      const r = await engine.ask({
        image: join(__dirname, '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg'),
        question: 'What is it?',
        reduce: parseReduceMode('prumerge'),
        maxNewTokens: 2,
        fixedLength: true,
      });
      assert.equal(r.tokens.length, 2);
    } finally {
      await engine.dispose();
    }
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

describe('ONNX external data: the loader reads only files inside the model folder', () => {
  let dir = '';
  before(async () => {
    dir = join(scratchDir('external'), 'tiny');
    await buildSynthetic('tiny', 2, { out: dir, dtype: 'fp32' });
  });

  /** A copy whose vision graph was edited, with a manifest that vouches for the edit, as an attacker would ship it. */
  const tampered = async (edit: (entries: { key?: string | null; value?: string | null }[]) => void): Promise<string> => {
    const copy = join(scratchDir('external'), 'copy');
    cpSync(dir, copy, { recursive: true });
    const graph = join(copy, 'vision.onnx');
    const model = onnx.ModelProto.decode(readFileSync(graph));
    const t = model.graph!.initializer!.find((i) => i.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)!;
    edit(t.externalData!);
    writeFileSync(graph, onnx.ModelProto.encode(model).finish());
    const manifest = JSON.parse(readFileSync(join(copy, 'model.json'), 'utf8'));
    manifest.files['vision.onnx'] = { bytes: statSync(graph).size, sha256: await sha256File(graph) };
    writeFileSync(join(copy, 'model.json'), JSON.stringify(manifest));
    return copy;
  };
  const set = (key: string, value: string) => (entries: { key?: string | null; value?: string | null }[]) => {
    entries.find((e) => e.key === key)!.value = value;
  };

  it('loads the untouched build', async () => {
    const engine = await Engine.load(dir, { ep: 'cpu' });
    await engine.dispose();
  });

  it('refuses a location that leaves the folder, however it is spelt', async () => {
    for (const location of ['../secret.bin', '../../../../etc/passwd', '/etc/passwd', 'sub/../../x.bin']) {
      const copy = await tampered(set('location', location));
      writeFileSync(join(copy, '..', 'secret.bin'), Buffer.alloc(1 << 20));
      await assert.rejects(
        Engine.load(copy, { ep: 'cpu' }),
        (e: unknown) => e instanceof ModelFolderError && e.message.includes(`in "${location}", outside the model folder`),
        location,
      );
    }
  });

  it('refuses an offset or length past the end of the data file, and a missing data file', async () => {
    await assert.rejects(
      Engine.load(await tampered(set('offset', '999999999')), { ep: 'cpu' }),
      /says tensor .* is at bytes 999999999\+\d+ of vision\.onnx\.data, which has \d+: the model is damaged/,
    );
    await assert.rejects(Engine.load(await tampered(set('length', '-1')), { ep: 'cpu' }), /the model is damaged/);
    await assert.rejects(
      Engine.load(await tampered(set('location', 'nothing-here.data')), { ep: 'cpu' }),
      /in nothing-here\.data, which is missing/,
    );
  });
});

it('refuses a model file that is a link to somewhere outside the folder', async () => {
  const dir = join(scratchDir('linked'), 'tiny');
  await buildSynthetic('tiny', 3, { out: dir, dtype: 'fp32' });
  const outside = join(scratchDir('linked'), 'elsewhere.bin');
  cpSync(join(dir, 'vision.onnx.data'), outside);
  rmSync(join(dir, 'vision.onnx.data'));
  symlinkSync(outside, join(dir, 'vision.onnx.data'));
  await assert.rejects(loadManifest(dir), /vision\.onnx\.data in the model folder links to .*elsewhere\.bin, outside it/);
});
