/**
 * LLaVA-OneVision's layout (LlavaOnevisionForConditionalGeneration): LLaVA-NeXT's overview and
 * tiles, but the overview's rows carry no newline and an unreduced tile grid larger than
 * anyres_max_N tiles' worth of patches is downsampled bilinearly first (docs/llava-onevision.md).
 */
import { CheckpointError } from '../../../checkpoint/safetensors';
import type { Json } from '../../../checkpoint/configFields';
import type { LayoutFamily } from '../../family';
import { gridPinpoints } from '../llavaNext/llavaNextLayout';

/** LlavaOnevisionConfig's default grids: every (height, width) of 1 to 6 tiles a side, height first. */
export function onevisionPinpoints(tile: number): [number, number][] {
  const out: [number, number][] = [];
  for (let h = 1; h <= 6; h++) for (let w = 1; w <= 6; w++) out.push([h * tile, w * tile]);
  return out;
}

/** vision_aspect_ratio "anyres_max_N" -> N. */
function maxTiles(json: Json): number {
  const v = json['vision_aspect_ratio'] ?? 'anyres_max_9';
  const m = typeof v === 'string' ? /^anyres_max_([1-9]\d*)$/.exec(v) : null;
  if (!m) throw new CheckpointError(`config.json: vision_aspect_ratio ${JSON.stringify(v)} is not supported (anyres_max_N)`);
  return Number(m[1]);
}

export const LLAVA_ONEVISION: LayoutFamily = {
  id: 'llava_onevision',
  modelType: 'llava_onevision',
  architecture: 'LlavaOnevisionForConditionalGeneration',
  example: 'llava-hf/llava-onevision-qwen2-0.5b-ov-hf',
  anyres: (json, tile) => ({ gridPinpoints: gridPinpoints(json, tile, onevisionPinpoints(tile)), maxTiles: maxTiles(json) }),
  paddedCrop: true,
};
