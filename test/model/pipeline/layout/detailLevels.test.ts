/**
 * Detail levels for tiled models: `medium` reads the base image and the best grid of at most 4
 * tiles among the model's own (transformers' select_best_resolution over those grids, restated in
 * the reference), `low` one crop; models with one grid refuse `medium`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { scratchDir, tinyCheckpoint, TinyShape } from '../../../helpers/checkpoints';
import { decodePng, noisePng } from '../../../helpers/images';
import { referenceSubImages } from '../../../reference/anyresReference';

const PRUMERGE = parseReduceMode('prumerge');

for (const shape of ['tiny-onevision', 'tiny-next'] as const satisfies readonly TinyShape[]) {
  describe(`detail levels: ${shape}`, () => {
    let engine: Engine;
    let pinpoints: [number, number][];
    let tile: number;
    before(async () => {
      const ckpt = await tinyCheckpoint({ seed: 9 }, () => {}, shape);
      const dir = join(scratchDir('model'), shape);
      await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
      engine = await Engine.load(dir);
      pinpoints = (ckpt.configJson['image_grid_pinpoints'] as [number, number][]).map(([h, w]) => [h, w]);
      tile = engine.manifest.preprocess.cropWidth;
    });
    after(() => engine.dispose());

    it('medium reads the base image and the best grid of at most 4 tiles; auto the best of all', async () => {
      for (const [w, h] of [
        [300, 170],
        [170, 300],
        [400, 90],
      ] as const) {
        const image = await noisePng(w, h, w + h);
        const { rgb } = await decodePng(image);
        const grids = {
          auto: referenceSubImages(rgb, w, h, pinpoints, tile).gridShape,
          medium: referenceSubImages(
            rgb,
            w,
            h,
            pinpoints.filter(([ph, pw]) => (ph / tile) * (pw / tile) <= 4),
            tile,
          ).gridShape,
        };
        for (const detail of ['auto', 'medium'] as const) {
          const [rows, cols] = grids[detail];
          const encoded = await engine.encodeImage(image, PRUMERGE, {}, true, detail);
          assert.equal(encoded.visionRuns, 1 + rows * cols, `${w} x ${h} ${detail}: ${rows} x ${cols} tiles`);
          const count = await engine.imageTokens(image, detail);
          assert.equal(count.subImages, 1 + rows * cols);
        }
        assert.ok(grids.medium[0] * grids.medium[1] <= 4);
        const count = await engine.imageTokens(image);
        assert.equal(count.medium?.subImages, 1 + grids.medium[0] * grids.medium[1]);
        assert.ok(count.msPerCrop !== undefined && count.msPerCrop >= 0, 'the tower has run: its time per crop is known');
      }
    });

    it('a follow-up at another detail level is a new reading of the image, not a continuation', async () => {
      const image = await noisePng(320, 160, 5);
      const ask = { image, question: 'What is it?', reduce: PRUMERGE, maxNewTokens: 2 };
      await engine.ask(ask);
      const medium = await engine.ask({ ...ask, followUp: true, detail: 'medium' });
      assert.notEqual(medium.conversation, 'continued');
      const again = await engine.ask({ ...ask, followUp: true, detail: 'medium' });
      assert.equal(again.conversation, 'continued');
    });
  });
}

describe('detail levels: a model with one grid', () => {
  it('refuses medium in one line', async () => {
    const engine = await Engine.load(demoModelDir());
    try {
      const image = await noisePng(64, 64, 1);
      await assert.rejects(
        engine.encodeImage(image, PRUMERGE, {}, true, 'medium'),
        /reads one crop: --detail medium is for models with tiles/,
      );
      await assert.rejects(engine.imageTokens(image, 'medium'), /--detail medium is for models with tiles/);
    } finally {
      await engine.dispose();
    }
  });
});
