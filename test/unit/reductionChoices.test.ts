/** The reduction picker's words: counts from the model and the image, never LLaVA-1.5's written in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDUCTION_CHOICES, reductionLabel, visualTokensPhrase } from '../../src/shared/reductionChoices';

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
});
