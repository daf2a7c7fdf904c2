/**
 * A LLaVA checkpoint's config.json, with transformers' defaults filled in where the hub's files
 * leave fields out (llava-1.5-7b-hf's text_config names only a few; LlamaConfig, MistralConfig
 * and CLIPVisionConfig supply the rest). LLaVA-1.5 (model_type "llava") and LLaVA-NeXT
 * ("llava_next": anyres tiles, docs/llava-next.md) share everything but `next`.
 */
import { isPinpoints } from '../pipeline/image/anyres';
import { CheckpointError } from './safetensors';

export interface VisionConfig {
  readonly hiddenSize: number; // C
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numChannels: number;
  readonly layerNormEps: number;
  readonly hiddenAct: 'quick_gelu' | 'gelu';
}

export interface TextConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
}

export interface LlavaConfig {
  readonly vision: VisionConfig;
  readonly text: TextConfig;
  readonly imageTokenIndex: number;
  /** Which hidden_states entry feeds the projector (-2: the input of the last layer). */
  readonly visionFeatureLayer: number;
  readonly projectorHiddenAct: 'gelu' | 'quick_gelu';
  /** LLaVA-NeXT only: the tile grids an image may be read at. */
  readonly next?: NextConfig;
}

export interface NextConfig {
  /** image_grid_pinpoints: (height, width) in pixels, each a multiple of the tower's image size. */
  readonly gridPinpoints: readonly (readonly [number, number])[];
}

/** LlavaNextConfig's default grid list (llava-hf's 1.6 checkpoints use it too). */
export const DEFAULT_GRID_PINPOINTS: readonly (readonly [number, number])[] = [
  [336, 672],
  [672, 336],
  [672, 672],
  [1008, 336],
  [336, 1008],
];

const ARCHITECTURES: Record<string, string> = { llava: 'LlavaForConditionalGeneration', llava_next: 'LlavaNextForConditionalGeneration' };

type Json = Record<string, unknown>;

export function llavaConfigFromJson(json: unknown): LlavaConfig {
  if (!isObject(json)) throw new CheckpointError('config.json must hold a JSON object');
  const modelType = json['model_type'];
  const archs = Array.isArray(json['architectures']) ? (json['architectures'] as unknown[]) : [];
  const arch = typeof modelType === 'string' ? ARCHITECTURES[modelType] : undefined;
  if (!arch || (archs.length > 0 && !archs.includes(arch))) {
    throw new CheckpointError(
      `unsupported architecture: model_type ${JSON.stringify(modelType)}, architectures ${JSON.stringify(archs)}; ` +
        'PruMerge Vision builds LlavaForConditionalGeneration (model_type "llava", e.g. llava-hf/llava-1.5-7b-hf) and ' +
        'LlavaNextForConditionalGeneration checkpoints (model_type "llava_next", e.g. llava-hf/llava-v1.6-mistral-7b-hf)',
    );
  }
  const v = isObject(json['vision_config']) ? json['vision_config'] : {};
  const t = isObject(json['text_config']) ? json['text_config'] : {};
  if (v['model_type'] !== undefined && v['model_type'] !== 'clip_vision_model') {
    throw new CheckpointError(
      `unsupported vision tower ${JSON.stringify(v['model_type'])}: PruMerge needs a CLIP vision tower (clip_vision_model)`,
    );
  }
  const textType = t['model_type'] ?? 'llama';
  if (textType !== 'llama' && textType !== 'mistral') {
    throw new CheckpointError(
      `unsupported language model ${JSON.stringify(textType)}: LLaMA-family text models (model_type "llama" or "mistral") are supported`,
    );
  }
  const mistral = textType === 'mistral';

  const vision: VisionConfig = {
    hiddenSize: int(v, 'hidden_size', 768, 'vision_config'),
    intermediateSize: int(v, 'intermediate_size', 3072, 'vision_config'),
    numLayers: int(v, 'num_hidden_layers', 12, 'vision_config'),
    numHeads: int(v, 'num_attention_heads', 12, 'vision_config'),
    imageSize: int(v, 'image_size', 224, 'vision_config'),
    patchSize: int(v, 'patch_size', 32, 'vision_config'),
    numChannels: int(v, 'num_channels', 3, 'vision_config'),
    layerNormEps: num(v, 'layer_norm_eps', 1e-5, 'vision_config'),
    hiddenAct: act(v, 'hidden_act', 'quick_gelu', 'vision_config'),
  };
  const text = textConfig(t, mistral, json['tie_word_embeddings']);
  const config: LlavaConfig = {
    vision,
    text,
    imageTokenIndex: int(json, 'image_token_index', 32000, ''),
    visionFeatureLayer: intAllowNegative(json, 'vision_feature_layer', -2),
    projectorHiddenAct: act(json, 'projector_hidden_act', 'gelu', ''),
    ...(modelType === 'llava_next' ? { next: { gridPinpoints: gridPinpoints(json, vision.imageSize) } } : {}),
  };
  checkConsistency(config, t);
  if (mistral) checkSlidingWindow(t, text.maxPositionEmbeddings);
  const strategy = json['vision_feature_select_strategy'] ?? 'default';
  if (strategy !== 'default') {
    throw new CheckpointError(
      `vision_feature_select_strategy ${JSON.stringify(strategy)} is not supported: PruMerge needs the CLS token dropped ("default")`,
    );
  }
  return config;
}

/** LlamaConfig's defaults, or MistralConfig's where they differ. */
function textConfig(t: Json, mistral: boolean, tieAtTop: unknown): TextConfig {
  const numHeads = int(t, 'num_attention_heads', 32, 'text_config');
  const hiddenSize = int(t, 'hidden_size', 4096, 'text_config');
  return {
    hiddenSize,
    intermediateSize: int(t, 'intermediate_size', mistral ? 14336 : 11008, 'text_config'),
    numLayers: int(t, 'num_hidden_layers', 32, 'text_config'),
    numHeads,
    numKvHeads: int(t, 'num_key_value_heads', mistral ? 8 : numHeads, 'text_config'),
    headDim: int(t, 'head_dim', Math.floor(hiddenSize / numHeads), 'text_config'),
    vocabSize: int(t, 'vocab_size', 32000, 'text_config'),
    rmsNormEps: num(t, 'rms_norm_eps', 1e-6, 'text_config'),
    ropeTheta: num(t, 'rope_theta', 10000, 'text_config'),
    maxPositionEmbeddings: int(t, 'max_position_embeddings', mistral ? 4096 * 32 : 2048, 'text_config'),
    tieWordEmbeddings: (t['tie_word_embeddings'] ?? tieAtTop ?? false) === true,
  };
}

/** Sliding-window attention is not built: a window shorter than the context would change the answers. */
function checkSlidingWindow(t: Json, context: number): void {
  const window = t['sliding_window'] === undefined ? 4096 : t['sliding_window']; // MistralConfig's default
  if (window !== null && typeof window === 'number' && window < context) {
    throw new CheckpointError(
      `text_config.sliding_window ${window} is shorter than the context (${context} positions): sliding-window attention is not supported`,
    );
  }
}

function gridPinpoints(json: Json, tile: number): [number, number][] {
  const v = json['image_grid_pinpoints'] ?? DEFAULT_GRID_PINPOINTS;
  if (!isPinpoints(v, tile)) {
    throw new CheckpointError(
      `config.json: image_grid_pinpoints must be a list of [height, width] pairs, each a multiple of the vision tower's ${tile} pixels; got ${JSON.stringify(v)}`,
    );
  }
  return v.map(([h, w]) => [h, w]);
}

function checkConsistency(c: LlavaConfig, t: Json): void {
  const { vision: v, text } = c;
  if (v.hiddenSize % v.numHeads !== 0)
    throw new CheckpointError(`vision_config: hidden_size ${v.hiddenSize} is not a multiple of num_attention_heads ${v.numHeads}`);
  if (v.imageSize % v.patchSize !== 0)
    throw new CheckpointError(`vision_config: image_size ${v.imageSize} is not a multiple of patch_size ${v.patchSize}`);
  if (text.numHeads % text.numKvHeads !== 0) {
    throw new CheckpointError(
      `text_config: num_attention_heads ${text.numHeads} is not a multiple of num_key_value_heads ${text.numKvHeads}`,
    );
  }
  // onnxruntime's GroupQueryAttention kernel takes head sizes in multiples of 16 (LLaMA's is 128)
  if (text.headDim % 16 !== 0)
    throw new CheckpointError(`text_config: head_dim ${text.headDim} is not supported: it must be a multiple of 16`);
  // PruMerge reads q / k of the layer that consumes the feature layer, so that layer must exist
  const consumer = v.numLayers + 1 + c.visionFeatureLayer;
  if (c.visionFeatureLayer >= -1 || consumer < 0) {
    throw new CheckpointError(
      `vision_feature_layer ${c.visionFeatureLayer} is not supported: PruMerge needs a feature layer from -${v.numLayers} to -2`,
    );
  }
  const scaling = t['rope_scaling'];
  if (scaling !== undefined && scaling !== null) {
    throw new CheckpointError(`text_config.rope_scaling ${JSON.stringify(scaling)} is not supported yet`);
  }
  if (t['hidden_act'] !== undefined && t['hidden_act'] !== 'silu') {
    throw new CheckpointError(`text_config.hidden_act ${JSON.stringify(t['hidden_act'])} is not supported (LLaMA uses silu)`);
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(obj: Json, key: string, fallback: number, where: string): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new CheckpointError(`config.json: ${where ? `${where}.` : ''}${key} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function int(obj: Json, key: string, fallback: number, where: string): number {
  const v = num(obj, key, fallback, where);
  if (!Number.isSafeInteger(v))
    throw new CheckpointError(`config.json: ${where ? `${where}.` : ''}${key} must be a whole number, got ${v}`);
  return v;
}

function intAllowNegative(obj: Json, key: string, fallback: number): number {
  const v = obj[key] ?? fallback;
  if (!Number.isSafeInteger(v))
    throw new CheckpointError(`config.json: ${key} must be a whole number (lists of layers are not supported), got ${JSON.stringify(v)}`);
  return v as number;
}

function act<T extends string>(obj: Json, key: string, fallback: T, where: string): T {
  const v = obj[key] ?? fallback;
  if (v !== 'gelu' && v !== 'quick_gelu') {
    throw new CheckpointError(`config.json: ${where ? `${where}.` : ''}${key} ${JSON.stringify(v)} is not supported (gelu, quick_gelu)`);
  }
  return v as T;
}
