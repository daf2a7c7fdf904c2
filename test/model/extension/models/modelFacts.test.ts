/** What the host reads of a model folder before the worker loads it: the random-weights notice follows model.json. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildFromCheckpoint, buildSynthetic } from '../../../../src/builder/buildModel';
import { readModelFacts } from '../../../../src/extension/models/modelFacts';
import { demoModelDir } from '../../../../src/pipeline/engine/engine';
import { scratchDir, tinyCheckpoint } from '../../../helpers/checkpoints';

describe('model facts for the chat', () => {
  it('mark the demo and a `prumerge synth` folder as random weights, a build from a checkpoint not', async () => {
    assert.deepEqual(readModelFacts(demoModelDir()), {
      randomWeights: true,
      patches: 576,
      imageSize: 336,
      tiled: false,
      details: { medium: false, low: false },
      severalImages: false, // LLaVA-1.5's layout with a Llama decoder
      score: 'cls', // CLIP
    });
    const synth = join(scratchDir('facts'), 'tiny-next');
    await buildSynthetic('tiny-next', 3, { out: synth, dtype: 'fp32' });
    // 56 px tiles of 14 px patches (shapes.ts: nextPinpoints(56)); 60 px for the OneVision shape
    // tiles: medium detail is offered (at most 4 of them)
    assert.deepEqual(readModelFacts(synth), {
      randomWeights: true,
      patches: 16,
      imageSize: 56,
      tiled: true,
      details: { medium: true, low: false },
      severalImages: false,
      score: 'cls',
    });
    // LLaVA-OneVision's anyres_max_N layout also reads an image as one crop
    const onevision = join(scratchDir('facts'), 'tiny-onevision');
    await buildSynthetic('tiny-onevision', 3, { out: onevision, dtype: 'fp32' });
    assert.deepEqual(readModelFacts(onevision), {
      randomWeights: true,
      patches: 16,
      imageSize: 60,
      tiled: true,
      details: { medium: true, low: true },
      severalImages: true,
      score: 'received', // SigLIP has no CLS token
    });
    const built = join(scratchDir('facts'), 'built');
    await buildFromCheckpoint((await tinyCheckpoint({ seed: 5 })).dir, { out: built, dtype: 'fp32' });
    assert.equal(readModelFacts(built)?.randomWeights, false);
  });

  it('are unknown for a folder without a readable model.json', () => {
    assert.equal(readModelFacts(scratchDir('facts')), undefined);
  });
});
