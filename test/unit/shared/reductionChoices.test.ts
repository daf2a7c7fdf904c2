/** The reduction picker's words: counts from the model and the image, never LLaVA-1.5's written in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUTO_REDUCTION,
  choicesFor,
  offeredReading,
  readingSetting,
  REDUCTION_CHOICES,
  reductionLabel,
  visualTokensPhrase,
} from '../../../src/shared/reductionChoices';
import { parseReading } from '../../../src/shared/reduceMode';

describe('reduction labels', () => {
  it("say LLaVA-1.5's 576 tokens for its one grid", () => {
    const t = { total: 576, subImages: 1 };
    assert.equal(reductionLabel('none', t), 'All 576 tokens');
    assert.equal(reductionLabel('topk:32', t), 'Fixed budget: 32 patches');
    assert.equal(visualTokensPhrase(t), "the image's 576 visual tokens");
  });

  it("say a LLaVA-NeXT image's own count and its parts (1024 x 768: 2340 tokens, overview and 4 tiles)", () => {
    const t = { total: 2340, subImages: 5 };
    assert.equal(reductionLabel('none', t), 'All 2340 tokens');
    assert.equal(reductionLabel('topk:32', t), 'Fixed budget: 32 patches in each of 5 parts');
    assert.equal(reductionLabel('topk:32', t, 'short'), 'Fixed budget: 32 x 5');
  });

  it('say what each selection favours, per part for tiled images', () => {
    assert.equal(reductionLabel('cdpruner:32', { total: 576, subImages: 1 }), 'CDPruner: 32 patches, varied and relevant to the question');
    assert.equal(
      reductionLabel('divprune:32', { total: 2340, subImages: 5 }),
      'DivPrune: 32 patches in each of 5 parts, as varied as possible',
    );
    assert.equal(reductionLabel('vispruner:32', { total: 2340, subImages: 5 }, 'short'), 'VisPruner: 32 x 5');
  });

  it('give no count while none is known', () => {
    for (const { value } of REDUCTION_CHOICES) assert.doesNotMatch(reductionLabel(value, undefined), /\d{3}/, value);
    assert.equal(reductionLabel('none', undefined), 'All visual tokens');
  });

  it("offer medium and low detail only for models that have them, and say them without the image's count", () => {
    assert.deepEqual(
      choicesFor({ medium: false, low: false }).map((c) => c.value),
      ['prumerge', 'prumerge+', 'topk:32', 'cdpruner:32', 'vispruner:32', 'divprune:32', 'none'],
    );
    assert.deepEqual(
      choicesFor({ medium: true, low: false }).map((c) => c.value),
      ['prumerge', 'prumerge+', 'topk:32', 'cdpruner:32', 'vispruner:32', 'divprune:32', 'none', 'prumerge@medium'],
    );
    assert.deepEqual(
      choicesFor({ medium: true, low: true }).map((c) => c.value),
      [
        'prumerge',
        'prumerge+',
        'topk:32',
        'cdpruner:32',
        'vispruner:32',
        'divprune:32',
        'none',
        'prumerge@medium',
        'prumerge@low',
        'none@low',
      ],
    );
    const t = { total: 4725, subImages: 7 };
    assert.equal(reductionLabel('prumerge@low', t), 'PruMerge (adaptive), low detail · 1 crop');
    assert.equal(reductionLabel('none@low', t), 'All tokens of one crop (low detail) · 1 crop');
    assert.equal(reductionLabel('prumerge@low', undefined), 'PruMerge (adaptive), low detail');
    // a saved choice the model in use cannot honour falls back to the same reduction
    assert.equal(offeredReading('prumerge@low', { medium: true, low: false }), 'prumerge');
    assert.equal(offeredReading('prumerge@low', { medium: true, low: true }), 'prumerge@low');
    assert.equal(offeredReading('prumerge@medium', { medium: false, low: false }), 'prumerge');
  });

  it("say each detail level's crops and, once the tower has run here, its time (7 crops x 5.3 s = 37 s)", () => {
    const t = { total: 4725, subImages: 7, medium: { total: 3000, subImages: 5 }, msPerCrop: 5300 };
    assert.equal(reductionLabel('prumerge', t), 'PruMerge (adaptive) · 7 crops, about 37 s');
    assert.equal(reductionLabel('prumerge@medium', t), 'PruMerge (adaptive), medium detail · 5 crops, about 27 s');
    assert.equal(reductionLabel('prumerge@low', t), 'PruMerge (adaptive), low detail · 1 crop, about 5 s');
    assert.equal(reductionLabel('prumerge', { ...t, msPerCrop: undefined }), 'PruMerge (adaptive) · 7 crops');
    assert.equal(reductionLabel('prumerge', t, 'short'), 'PruMerge');
    // one grid (LLaVA-1.5): no crops to speak of
    assert.equal(reductionLabel('prumerge', { total: 576, subImages: 1, msPerCrop: 1500 }), 'PruMerge (adaptive)');
  });
});

describe('readings', () => {
  it('are a reduction with an optional @medium or @low', () => {
    assert.deepEqual(parseReading('topk:32'), { reduce: { kind: 'topk', k: 32 }, detail: 'auto' });
    assert.deepEqual(parseReading('PruMerge+@LOW'), { reduce: { kind: 'prumerge+' }, detail: 'low' });
    assert.deepEqual(parseReading('prumerge@medium'), { reduce: { kind: 'prumerge' }, detail: 'medium' });
    assert.throws(() => parseReading('prumerge@high'), /unknown reduction "prumerge@high"/);
  });
});

describe('the default reading', () => {
  it('auto is PruMerge for a tower with CLS, DivPrune (32 a part) for one without; anything else is itself', () => {
    assert.equal(readingSetting('auto', 'cls'), 'prumerge');
    assert.equal(readingSetting('auto', 'received'), 'divprune:32');
    assert.equal(readingSetting('auto'), 'prumerge', 'folders built before SigLIP: CLIP');
    assert.equal(readingSetting('cdpruner:32', 'received'), 'cdpruner:32');
    // what auto stands for is one of the picker's entries, so the picker can show it
    const offered = REDUCTION_CHOICES.map((c) => c.value);
    for (const score of ['cls', 'received'] as const) assert.ok(offered.includes(readingSetting(AUTO_REDUCTION, score)));
  });
});
