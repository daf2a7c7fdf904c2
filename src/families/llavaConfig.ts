/**
 * A LLaVA checkpoint's config.json, with transformers' defaults filled in where the hub's files
 * leave fields out (llava-1.5-7b-hf's text_config names only a few). The families' registry
 * picks the layout from model_type, the tower from vision_config.model_type and the text model
 * from text_config.model_type; each fills its own defaults.
 */
import type { Json } from '../checkpoint/configFields';
import { int, intAllowNegative, isObject, oneOf } from '../checkpoint/configFields';
import type { LlavaConfig, TextModelFamily, VisionTowerFamily } from './family';
import { LAYOUTS, layoutByModelType, TEXT_MODELS, textByModelType, towerByModelType, VISION_TOWERS } from './registry';
import { CheckpointError } from '../checkpoint/safetensors';

export type { AnyresConfig, LlavaConfig, TextConfig, VisionConfig } from './family';
export { DEFAULT_GRID_PINPOINTS } from './layout/llavaNext/llavaNextLayout';

const known = <T extends { modelType: string }>(r: Record<string, T>): string =>
  Object.values(r)
    .map((f) => JSON.stringify(f.modelType))
    .join(', ');

export function llavaConfigFromJson(json: unknown): LlavaConfig {
  if (!isObject(json)) throw new CheckpointError('config.json must hold a JSON object');
  const modelType = json['model_type'];
  const archs = Array.isArray(json['architectures']) ? (json['architectures'] as unknown[]) : [];
  const layout = layoutByModelType(modelType);
  if (!layout || (archs.length > 0 && !archs.includes(layout.architecture))) {
    throw new CheckpointError(
      `unsupported architecture: model_type ${JSON.stringify(modelType)}, architectures ${JSON.stringify(archs)}; PruMerge Vision builds ` +
        Object.values(LAYOUTS)
          .map((l) => `${l.architecture} (model_type "${l.modelType}", e.g. ${l.example})`)
          .join(', '),
    );
  }
  const v = isObject(json['vision_config']) ? json['vision_config'] : {};
  const t = isObject(json['text_config']) ? json['text_config'] : {};
  const tower: VisionTowerFamily | undefined = towerByModelType(v['model_type'] ?? 'clip_vision_model');
  if (!tower) {
    throw new CheckpointError(`unsupported vision tower ${JSON.stringify(v['model_type'])}: PruMerge Vision knows ${known(VISION_TOWERS)}`);
  }
  const text: TextModelFamily | undefined = textByModelType(t['model_type'] ?? 'llama');
  if (!text) {
    throw new CheckpointError(`unsupported language model ${JSON.stringify(t['model_type'])}: PruMerge Vision knows ${known(TEXT_MODELS)}`);
  }
  const vision = tower.config(v);
  const textConfig = text.config(t, json['tie_word_embeddings']);
  const tiles = layout.anyres(json, vision.imageSize);
  const config: LlavaConfig = {
    family: { vision: tower.id, text: text.id, layout: layout.id },
    vision,
    text: textConfig,
    imageTokenIndex: int(json, 'image_token_index', 32000, ''),
    visionFeatureLayer: intAllowNegative(json, 'vision_feature_layer', -2),
    projectorHiddenAct: oneOf(json, 'projector_hidden_act', 'gelu', ['gelu', 'quick_gelu'], ''),
    ...(tiles ? { tiles } : {}),
  };
  checkConsistency(config);
  tower.scoreLayer(config); // refuses a feature layer the tower's scoring cannot use
  text.check(t, textConfig);
  const strategy = json['vision_feature_select_strategy'] ?? 'default';
  if (strategy !== tower.selectStrategy) {
    throw new CheckpointError(
      `vision_feature_select_strategy ${JSON.stringify(strategy)} is not supported with a ${tower.id} tower: PruMerge Vision reads every patch and no CLS token ("${tower.selectStrategy}")`,
    );
  }
  return config;
}

function checkConsistency(c: LlavaConfig): void {
  const { vision: v, text } = c;
  if (v.hiddenSize % v.numHeads !== 0)
    throw new CheckpointError(`vision_config: hidden_size ${v.hiddenSize} is not a multiple of num_attention_heads ${v.numHeads}`);
  if (v.imageSize < v.patchSize)
    throw new CheckpointError(`vision_config: image_size ${v.imageSize} is smaller than patch_size ${v.patchSize}`);
  if (text.numHeads % text.numKvHeads !== 0) {
    throw new CheckpointError(
      `text_config: num_attention_heads ${text.numHeads} is not a multiple of num_key_value_heads ${text.numKvHeads}`,
    );
  }
  // onnxruntime's GroupQueryAttention kernel takes head sizes in multiples of 16 (LLaMA's is 128, Qwen2-0.5B's 64)
  if (text.headDim % 16 !== 0)
    throw new CheckpointError(`text_config: head_dim ${text.headDim} is not supported: it must be a multiple of 16`);
}

/** Patches per side of the tower's grid (SigLIP's 384 px at 14 px: 27, the last 6 pixels unread). */
export function patchGrid(config: LlavaConfig): number {
  return Math.floor(config.vision.imageSize / config.vision.patchSize);
}

/** The encoder layer the vision graph stops in (its q / k are PruMerge's). */
export function featureLayer(config: LlavaConfig): number {
  return VISION_TOWERS[config.family.vision].scoreLayer(config);
}

/** The families of a parsed config, for the builder. */
export function familiesOf(config: LlavaConfig): { tower: VisionTowerFamily; text: TextModelFamily } {
  return { tower: VISION_TOWERS[config.family.vision], text: TEXT_MODELS[config.family.text] };
}

export type { Json };
