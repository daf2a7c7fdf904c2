/**
 * LLaVA-NeXT's layout (LlavaNextForConditionalGeneration): an overview and anyres tiles, each
 * tile grid row followed by the learned image_newline (docs/llava-next.md).
 */
import { CheckpointError } from '../../../checkpoint/safetensors';
import { isPinpoints } from '../../../format/visualLayout';
import type { Json } from '../../../checkpoint/configFields';
import type { LayoutFamily } from '../../family';

/** LlavaNextConfig's default grid list (llava-hf's 1.6 checkpoints use it too). */
export const DEFAULT_GRID_PINPOINTS: readonly (readonly [number, number])[] = [
  [336, 672],
  [672, 336],
  [672, 672],
  [1008, 336],
  [336, 1008],
];

export function gridPinpoints(json: Json, tile: number, fallback: readonly (readonly [number, number])[]): [number, number][] {
  const v = json['image_grid_pinpoints'] ?? fallback;
  if (!isPinpoints(v, tile)) {
    throw new CheckpointError(
      `config.json: image_grid_pinpoints must be a list of [height, width] pairs, each a multiple of the vision tower's ${tile} pixels; got ${JSON.stringify(v)}`,
    );
  }
  return v.map(([h, w]) => [h, w]);
}

export const LLAVA_NEXT: LayoutFamily = {
  id: 'llava_next',
  modelType: 'llava_next',
  architecture: 'LlavaNextForConditionalGeneration',
  example: 'llava-hf/llava-v1.6-mistral-7b-hf',
  anyres: (json, tile) => ({ gridPinpoints: gridPinpoints(json, tile, DEFAULT_GRID_PINPOINTS) }),
  paddedCrop: false,
};
