/**
 * The model families this build knows, one entry per folder: adding a vision tower, text model
 * or layout means adding its folder and one line here (docs/architecture.md, "Model families").
 */
import type { LayoutFamily, LayoutId, TextModelFamily, TextModelId, VisionTowerFamily, VisionTowerId } from './family';
import { LLAVA } from './layout/llava/llavaLayout';
import { LLAVA_NEXT } from './layout/llavaNext/llavaNextLayout';
import { LLAVA_ONEVISION } from './layout/llavaOnevision/llavaOnevisionLayout';
import { LLAMA, MISTRAL } from './text/llama/llamaText';
import { QWEN2 } from './text/qwen2/qwen2Text';
import { CLIP } from './vision/clip/clipTower';
import { SIGLIP } from './vision/siglip/siglipTower';

export const VISION_TOWERS: Readonly<Record<VisionTowerId, VisionTowerFamily>> = { clip: CLIP, siglip: SIGLIP };
export const TEXT_MODELS: Readonly<Record<TextModelId, TextModelFamily>> = { llama: LLAMA, mistral: MISTRAL, qwen2: QWEN2 };
export const LAYOUTS: Readonly<Record<LayoutId, LayoutFamily>> = { llava: LLAVA, llava_next: LLAVA_NEXT, llava_onevision: LLAVA_ONEVISION };

export const layoutByModelType = (modelType: unknown): LayoutFamily | undefined =>
  Object.values(LAYOUTS).find((l) => l.modelType === modelType);
export const towerByModelType = (modelType: unknown): VisionTowerFamily | undefined =>
  Object.values(VISION_TOWERS).find((v) => v.modelType === modelType);
export const textByModelType = (modelType: unknown): TextModelFamily | undefined =>
  Object.values(TEXT_MODELS).find((t) => t.modelType === modelType);
