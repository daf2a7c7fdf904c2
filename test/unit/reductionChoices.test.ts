/** The reduction picker's words: counts from the model and the image, never LLaVA-1.5's written in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { choicesFor, offeredReading, REDUCTION_CHOICES, reductionLabel, visualTokensPhrase } from '../../src/shared/reductionChoices';
import { parseReading } from '../../src/shared/reduceMode';

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

  it('give no count while none is known', () => {
    for (const { value } of REDUCTION_CHOICES) assert.doesNotMatch(reductionLabel(value, undefined), /\d{3}/, value);
    assert.equal(reductionLabel('none', undefined), 'All visual tokens');
  });

  it("offer low detail only for models that have it, and say it without the image's count", () => {
    assert.deepEqual(
      choicesFor(false).map((c) => c.value),
      ['prumerge', 'prumerge+', 'topk:32', 'none'],
    );
    assert.deepEqual(
      choicesFor(true).map((c) => c.value),
      ['prumerge', 'prumerge+', 'topk:32', 'none', 'prumerge@low', 'none@low'],
    );
    const t = { total: 4725, subImages: 7 };
    assert.equal(reductionLabel('prumerge@low', t), 'PruMerge (adaptive), low detail');
    assert.equal(reductionLabel('none@low', t), 'All tokens of one crop (low detail)');
    // a saved choice the model in use cannot honour falls back to the same reduction
    assert.equal(offeredReading('prumerge@low', false), 'prumerge');
    assert.equal(offeredReading('prumerge@low', true), 'prumerge@low');
  });
});

describe('readings', () => {
  it('are a reduction with an optional @low', () => {
    assert.deepEqual(parseReading('topk:32'), { reduce: { kind: 'topk', k: 32 }, detail: 'auto' });
    assert.deepEqual(parseReading('PruMerge+@LOW'), { reduce: { kind: 'prumerge+' }, detail: 'low' });
    assert.throws(() => parseReading('prumerge@high'), /unknown reduction "prumerge@high"/);
  });
});
