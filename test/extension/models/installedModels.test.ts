import assert from 'node:assert/strict';
import { cpSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildFromCheckpoint, buildSynthetic } from '../../../src/builder/buildModel';
import { deleteInside, folderBytes, hubRepoOf, listInstalledModels } from '../../../src/extension/models/installedModels';
import { scratchDir, tinyCheckpoint } from '../../helpers/checkpoints';

describe('installed models', () => {
  it('lists the built folders with their size and format, and the download each came from while it exists', async () => {
    const root = scratchDir('installed');
    const models = join(root, 'models');
    // a checkpoint as the hub cache holds it, and one of the user's own
    const ckpt = await tinyCheckpoint({ seed: 71 });
    const snapshot = join(root, 'hub', 'models--llava-test--tiny', 'snapshots', 'a'.repeat(40));
    mkdirSync(snapshot, { recursive: true });
    cpSync(ckpt.dir, snapshot, { recursive: true });
    await buildFromCheckpoint(snapshot, { out: join(models, 'tiny-fp32'), dtype: 'fp32', name: 'tiny' });
    await buildSynthetic('tiny', 1, { out: join(models, 'synthetic-int4'), dtype: 'int4' });
    mkdirSync(join(models, 'half.partial')); // an unfinished build
    mkdirSync(join(models, 'not-a-model'));

    const list = await listInstalledModels(models);
    assert.deepEqual(
      list.map((m) => [m.name, m.dtype]),
      [
        ['tiny', 'fp32'],
        ['tiny (random weights)', 'int4'],
      ],
    );
    // the int4 build's tower is int8 where its check passed, and the list says what the check measured
    assert.equal(list[0]!.vision, 'vision tower fp32');
    assert.match(
      list[1]!.vision,
      /^vision tower int8 \([78]-bit weights\) in 3 of 3 layers, float32 in the rest; checked: projected rows' cosine /,
    );
    const files = ['vision.onnx', 'projector.onnx', 'decoder.onnx'].map((f) => statSync(join(models, 'tiny-fp32', f)).size);
    assert.ok(list[0]!.bytes > files.reduce((a, b) => a + b, 0), 'every file counted');
    assert.deepEqual(list[0]!.download, { dir: join(root, 'hub', 'models--llava-test--tiny'), repo: 'llava-test/tiny' });
    assert.equal(list[1]!.download, undefined);
    assert.ok((await folderBytes(list[0]!.download!.dir)) >= (await folderBytes(ckpt.dir)));

    await deleteInside(join(root, 'hub'), list[0]!.download!.dir);
    assert.equal((await listInstalledModels(models))[0]!.download, undefined, 'a deleted download is no longer offered');
  });

  it('reads a repository only from a hub cache path, and deletes only inside its root', async () => {
    assert.deepEqual(hubRepoOf('/c/hub/models--llava-hf--llava-1.5-7b-hf/snapshots/0123'), {
      dir: '/c/hub/models--llava-hf--llava-1.5-7b-hf',
      repo: 'llava-hf/llava-1.5-7b-hf',
    });
    assert.equal(hubRepoOf('/home/me/checkpoints/llava'), undefined);
    await assert.rejects(deleteInside(scratchDir('root'), scratchDir('elsewhere')), /is not inside/);
  });
});
