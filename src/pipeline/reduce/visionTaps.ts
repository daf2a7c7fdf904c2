/**
 * What the reduction needs from the CLIP vision tower. Every tensor is row-major
 * (tokens, width) with row 0 the CLS token and rows 1..N the patches in raster order.
 */
import { UserError } from '../../common/errors';
export interface VisionTaps {
  /** N + 1: the CLS token and N patch tokens. */
  readonly tokens: number;
  /** C: the vision tower's hidden width (1024 for CLIP ViT-L/14). */
  readonly width: number;
  /** (tokens, width) penultimate hidden states: hidden_states[-2], the input of the last layer. */
  readonly hidden: Float32Array;
  /** (tokens, width) the last layer's q_proj(layer_norm1(hidden)), bias included, heads not split. */
  readonly q: Float32Array;
  /** (tokens, width) the last layer's k_proj(layer_norm1(hidden)), bias included, heads not split. */
  readonly k: Float32Array;
}

export class TapsError extends UserError {
  override readonly name = 'TapsError';
}

/** Throws a TapsError unless the shapes agree; the values are checked where they are used. */
export function checkTapsShape(taps: VisionTaps): void {
  const { tokens, width } = taps;
  if (!Number.isSafeInteger(tokens) || tokens < 2) {
    throw new TapsError(`need the CLS token and at least one patch (N + 1 >= 2 rows), got ${tokens}`);
  }
  if (!Number.isSafeInteger(width) || width < 1) {
    throw new TapsError(`the hidden width C must be a whole number >= 1, got ${width}`);
  }
  for (const name of ['hidden', 'q', 'k'] as const) {
    if (taps[name].length !== tokens * width) {
      throw new TapsError(`${name} holds ${taps[name].length} values, expected ${tokens} x ${width} = ${tokens * width}`);
    }
  }
}
