/** Greedy decoding by the float64 reference, recomputing the whole sequence at every step (no cache). */
import assert from 'node:assert/strict';
import type { LlavaConfig } from '../../src/families/llavaConfig';
import type { AskResult } from '../../src/shared/results';
import { embedTokens, llamaLogits, TextRef, Weights } from '../reference/llavaReference';

export interface ReferenceGreedy {
  readonly tokens: number[];
  /** Top logit minus the runner-up at each step. */
  readonly margins: number[];
}

/** The prompt `inputIds` with its image slots filled by `visual` in order (one row each, every image's), then `steps` greedy tokens. */
export function referenceGreedy(
  text: TextRef,
  weights: Weights,
  inputIds: number[],
  imageId: number,
  visual: Float64Array[],
  steps: number,
): ReferenceGreedy {
  assert.equal(inputIds.filter((id) => id === imageId).length, visual.length, 'one image slot per visual token');
  let slot = 0; // the image slots in order, whichever image they belong to
  const rows = inputIds.map((id) => (id === imageId ? visual[slot++]! : embedTokens(text, weights, [id])[0]!));
  const tokens: number[] = [];
  const margins: number[] = [];
  for (let step = 0; step < steps; step++) {
    const logits = llamaLogits(text, weights, rows, true)[0]!;
    const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
    tokens.push(order[0]!);
    margins.push(logits[order[0]!]! - logits[order[1]!]!);
    rows.push(embedTokens(text, weights, [order[0]!])[0]!);
  }
  return { tokens, margins };
}

/**
 * Greedy tokens equal the reference's; a difference is accepted only where the reference's top
 * two logits are within float32 noise of each other, and the comparison stops there.
 */
export function assertSameGreedy(result: AskResult, ref: ReferenceGreedy): void {
  for (let i = 0; i < result.tokens.length; i++) {
    if (result.tokens[i] === ref.tokens[i]) continue;
    assert.ok(ref.margins[i]! < 1e-3, `token ${i}: engine ${result.tokens[i]}, reference ${ref.tokens[i]} (margin ${ref.margins[i]})`);
    return;
  }
}

/** The answer's greedy tokens are the float64 reference's for checkpoint `ckpt`, with `visual` in the image slots. */
export function assertReferenceTokens(
  ckpt: { readonly config: LlavaConfig; readonly weights: Weights },
  imageTokenId: number,
  result: AskResult,
  visual: Float64Array[],
): void {
  const { config, weights } = ckpt;
  assertSameGreedy(result, referenceGreedy({ ...config.text }, weights, result.inputIds, imageTokenId, visual, result.tokens.length));
}
