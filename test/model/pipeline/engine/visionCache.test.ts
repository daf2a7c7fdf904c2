/**
 * The vision tower runs once per crop: a second reading of the same pixels (a new conversation,
 * an inspection, a tiled image's crops) takes its outputs from the engine's cache and gives the
 * same rows as a fresh engine; a changed file, an unloaded model and the memory bound are misses.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { scratchDir, tinyCheckpoint } from '../../../helpers/checkpoints';
import { noisePng } from '../../../helpers/images';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const PRUMERGE = parseReduceMode('prumerge');
const SAMPLE_OV = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'editor-screenshot.png');

describe('the vision cache: LLaVA-1.5 (one crop)', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.load(demoModelDir());
  });
  after(() => engine.dispose());

  it('a new conversation on the same image runs no tower and gets the rows a fresh engine computes', async () => {
    const ask = { image: SAMPLE, question: 'What is shown?', reduce: PRUMERGE, maxNewTokens: 4 };
    const first = await engine.ask(ask);
    const second = await engine.ask(ask);
    assert.equal(first.visual.visionCached, 0);
    assert.equal(second.visual.visionCached, 1);
    assert.equal(second.visual.visionRuns, 1);
    const fresh = await Engine.load(demoModelDir(), { visionCacheBytes: 0 });
    try {
      const alone = await fresh.ask(ask);
      assert.equal(alone.visual.visionCached, 0);
      assert.deepEqual(second.tokens, alone.tokens);
      assert.deepEqual(second.visual.indices, alone.visual.indices);
      // the cached outputs were not changed by the reduction that read them
      const a = await engine.encodeImage(SAMPLE, parseReduceMode('none'));
      const b = await fresh.encodeImage(SAMPLE, parseReduceMode('none'));
      assert.equal(a.visionCached, 1);
      assert.deepEqual(a.embeds, b.embeds);
    } finally {
      await fresh.dispose();
    }
  });

  it('an inspection after an answer reads the cache; every reduction shares the one tower run', async () => {
    const image = await noisePng(300, 200, 71);
    await engine.ask({ image, question: 'Describe it.', reduce: PRUMERGE, maxNewTokens: 2 });
    const misses = engine.visionCache.misses;
    for (const mode of ['prumerge+', 'topk:8', 'none']) {
      const inspection = await engine.inspect(image, parseReduceMode(mode));
      assert.equal(inspection.visionCached, 1, mode);
    }
    assert.equal(engine.visionCache.misses, misses);
  });

  it('a changed file under the same name is read again', async () => {
    const path = join(scratchDir('img'), 'same-name.png');
    copyFileSync(await noisePng(120, 90, 1), path);
    const one = await engine.encodeImage(path, PRUMERGE, {}, false);
    copyFileSync(await noisePng(120, 90, 2), path);
    const two = await engine.encodeImage(path, PRUMERGE, {}, false);
    assert.equal(one.visionCached, 0);
    assert.equal(two.visionCached, 0);
    assert.equal((await engine.encodeImage(path, PRUMERGE, {}, false)).visionCached, 1);
  });

  it('holds to its memory bound, least recently used first, and empties when the model is unloaded', async () => {
    // the demo tower's outputs per crop: hidden, q and k, (576 patches + CLS) x width float32 each
    const m = engine.manifest.vision;
    const crop = 3 * (m.grid ** 2 + 1) * m.hiddenSize * 4;
    const small = await Engine.load(demoModelDir(), { visionCacheBytes: 2 * crop });
    const images = [await noisePng(64, 64, 11), await noisePng(64, 64, 12), await noisePng(64, 64, 13)];
    const cached = async (i: number): Promise<number> => (await small.encodeImage(images[i]!, PRUMERGE, {}, false)).visionCached;
    assert.deepEqual([await cached(0), await cached(1), await cached(0)], [0, 0, 1]);
    assert.equal(await cached(2), 0); // evicts 1, the least recently used
    assert.equal(small.visionCache.bytes, 2 * crop);
    assert.equal(small.visionCache.size, 2);
    assert.equal(await cached(0), 1);
    assert.equal(await cached(1), 0);
    await small.dispose();
    assert.equal(small.visionCache.size, 0);
    assert.equal(small.visionCache.bytes, 0);
  });
});

describe('the vision cache: LLaVA-OneVision (a base image and tiles)', () => {
  let engine: Engine;
  let dir: string;
  before(async () => {
    const ckpt = await tinyCheckpoint({ seed: 5 }, () => {}, 'tiny-onevision');
    dir = join(scratchDir('model'), 'ov');
    await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
    engine = await Engine.load(dir);
  });
  after(() => engine.dispose());

  it('every crop is cached; a Stop between crops keeps those already run for the next reading', async () => {
    const image = await noisePng(240, 130, 3);
    const controller = new AbortController();
    // Stop as the tower starts: the check before the first crop has passed, the one before the second throws
    const stopped = engine
      .encodeImage(image, PRUMERGE, {
        signal: controller.signal,
        onStage: (stage) => {
          if (stage === 'vision') controller.abort();
        },
      })
      .catch((e: unknown) => e);
    assert.ok((await stopped) instanceof Error);
    const crops = engine.visionCache.size;
    assert.equal(crops, 1);
    const full = await engine.encodeImage(image, PRUMERGE);
    assert.ok(full.visionRuns > crops, `${full.visionRuns} crops, ${crops} before`);
    assert.equal(full.visionCached, crops);
    const again = await engine.encodeImage(image, PRUMERGE);
    assert.equal(again.visionCached, again.visionRuns);
    const fresh = await Engine.load(dir, { visionCacheBytes: 0 });
    try {
      const alone = await fresh.encodeImage(image, PRUMERGE);
      assert.deepEqual(again.embeds, alone.embeds);
      assert.deepEqual(full.embeds, alone.embeds);
    } finally {
      await fresh.dispose();
    }
  });

  it('an image read before the question: the question finds every crop read', async () => {
    const image = await noisePng(250, 120, 21);
    const early = await engine.prepare(image);
    assert.equal(early.cached, 0);
    assert.ok(early.crops > 1);
    const r = await engine.ask({ image, question: 'What is it?', reduce: PRUMERGE, maxNewTokens: 2 });
    assert.deepEqual([r.visual.visionCached, r.visual.visionRuns], [early.crops, early.crops]);
  });

  it("another chat's question waits for one crop of an early reading at most, not for the rest", async () => {
    const image = await noisePng(260, 140, 22);
    const events: string[] = [];
    let asked: Promise<unknown> | undefined;
    const early = engine.prepare(image, 'auto', {
      onCrop: (done, total) => {
        events.push(`crop ${done}/${total}`);
        // a question from another chat arrives as the first crop is done
        asked ??= engine
          .ask({ image: SAMPLE_OV, question: 'Other chat', reduce: PRUMERGE, maxNewTokens: 2, owner: 'other' })
          .then(() => events.push('answer'));
      },
    });
    const { crops } = await early;
    await asked;
    assert.equal(events[0], 'crop 1/' + crops);
    assert.equal(events[1], 'answer', events.join(', '));
    assert.equal(events.length, crops + 1);
  });

  it('a cancelled early reading stops between crops and leaves what it read', async () => {
    const image = await noisePng(270, 150, 23);
    const controller = new AbortController();
    const before = engine.visionCache.size;
    const early = engine.prepare(image, 'auto', { signal: controller.signal, onCrop: (done) => done === 2 && controller.abort() });
    await assert.rejects(early, /cancelled/);
    assert.equal(engine.visionCache.size, before + 2);
    const r = await engine.encodeImage(image, PRUMERGE);
    assert.equal(r.visionCached, 2);
  });
});
