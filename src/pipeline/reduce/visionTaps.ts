/**
 * What the reduction needs from the vision tower. CLIP (ClsTaps): every tensor row-major
 * (tokens, width) with row 0 the CLS token and rows 1..N the patches in raster order. Towers
 * without CLS (ReceivedTaps): the N patches only, and each patch's received attention.
 */
import { UserError } from '../../common/errors';
import { VISION_IO } from '../../format/graphNames';
import type { ModelManifest } from '../../format/modelManifest';

export interface ClsTaps {
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

/** A tower without a CLS token (SigLIP): patches only, scored by the attention they receive. */
export interface ReceivedTaps {
  /** N patch tokens. */
  readonly tokens: number;
  readonly width: number;
  /** (N, width) the features the projector reads. */
  readonly hidden: Float32Array;
  /** (N, width) the same layer's k_proj(layer_norm1(its input)), bias included. */
  readonly k: Float32Array;
  /** (N) softmax attention received, averaged over heads and queries (docs/prumerge.md). */
  readonly received: Float32Array;
}

export type TowerTaps = ClsTaps | ReceivedTaps;

export class TapsError extends UserError {
  override readonly name = 'TapsError';
}

/** Throws a TapsError unless the shapes agree; the values are checked where they are used. */
export function checkTapsShape(taps: TowerTaps): void {
  const { tokens, width } = taps;
  const received = 'received' in taps;
  if (!Number.isSafeInteger(tokens) || tokens < (received ? 1 : 2)) {
    throw new TapsError(
      received ? `need at least one patch, got ${tokens}` : `need the CLS token and at least one patch (N + 1 >= 2 rows), got ${tokens}`,
    );
  }
  if (received && taps.received.length !== tokens) {
    throw new TapsError(`received holds ${taps.received.length} values, expected one per patch (${tokens})`);
  }
  if (!Number.isSafeInteger(width) || width < 1) {
    throw new TapsError(`the hidden width C must be a whole number >= 1, got ${width}`);
  }
  const tensors: [string, Float32Array][] = [
    ['hidden', taps.hidden],
    ['k', taps.k],
  ];
  if (!received) tensors.push(['q', taps.q]);
  for (const [name, values] of tensors) {
    if (values.length !== tokens * width) {
      throw new TapsError(`${name} holds ${values.length} values, expected ${tokens} x ${width} = ${tokens * width}`);
    }
  }
}

/** What the reduction reads of one vision.onnx run, by the tower's patch score. */
export function towerTaps(
  vision: Pick<ModelManifest['vision'], 'score' | 'grid' | 'hiddenSize'>,
  output: (name: string) => Float32Array,
): TowerTaps {
  const patches = vision.grid * vision.grid;
  const width = vision.hiddenSize;
  if (vision.score === 'received') {
    return { tokens: patches, width, hidden: output(VISION_IO.hidden), k: output(VISION_IO.k), received: output(VISION_IO.received) };
  }
  return { tokens: patches + 1, width, hidden: output(VISION_IO.hidden), q: output(VISION_IO.q), k: output(VISION_IO.k) };
}

/** (indices.length, width) the rows `indices` of `x`, in that order. */
export function rowsAt(x: Float32Array, indices: ArrayLike<number>, width: number): Float32Array {
  const out = new Float32Array(indices.length * width);
  for (let i = 0; i < indices.length; i++) out.set(x.subarray(indices[i]! * width, (indices[i]! + 1) * width), i * width);
  return out;
}

/** (patches, width) the features the projector reads: CLS dropped where the tower has one. */
export function patchFeatures(taps: TowerTaps): Float32Array {
  return 'received' in taps ? taps.hidden : taps.hidden.subarray(taps.width);
}
