/**
 * Named model shapes as Hugging Face config.json objects: the real LLaVA-1.5 sizes (for synthetic
 * benchmarks without a download) and small ones for tests and the demo model.
 */

type ConfigJson = Record<string, unknown>;

function llava(vision: ConfigJson, text: ConfigJson, extra: ConfigJson = {}): ConfigJson {
  return {
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: 32000,
    projector_hidden_act: 'gelu',
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    vision_config: { model_type: 'clip_vision_model', hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, ...vision },
    text_config: { model_type: 'llama', hidden_act: 'silu', rms_norm_eps: 1e-5, rope_theta: 10000, ...text },
    ...extra,
  };
}

/** LLaVA-NeXT: the same towers, read at the anyres grids `pinpoints` ((height, width) pixels). */
function llavaNext(vision: ConfigJson, text: ConfigJson, pinpoints: number[][]): ConfigJson {
  return llava(vision, text, {
    architectures: ['LlavaNextForConditionalGeneration'],
    model_type: 'llava_next',
    image_grid_pinpoints: pinpoints,
  });
}

/** llava-hf's 1.6 grids, for a tower of `tile` pixels (336 for the real ones). */
function nextPinpoints(tile: number): number[][] {
  return [
    [1, 2],
    [2, 1],
    [2, 2],
    [3, 1],
    [1, 3],
  ].map(([h, w]) => [h! * tile, w! * tile]);
}

/** A SigLIP tower and a Qwen2 text model, as llava-hf's 0.5B OneVision and Interleave checkpoints declare them. */
function siglipQwen2(vision: ConfigJson, text: ConfigJson, extra: ConfigJson): ConfigJson {
  return {
    image_token_index: 151646,
    projector_hidden_act: 'gelu',
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'full',
    vision_config: {
      model_type: 'siglip_vision_model',
      hidden_act: 'gelu_pytorch_tanh',
      layer_norm_eps: 1e-6,
      vision_use_head: false,
      ...vision,
    },
    text_config: {
      model_type: 'qwen2',
      hidden_act: 'silu',
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      use_sliding_window: false,
      ...text,
    },
    tie_word_embeddings: true,
    ...extra,
  };
}

/** LLaVA-OneVision: anyres_max_N over grids of 1 to 6 tiles a side. */
function onevision(vision: ConfigJson, text: ConfigJson, tile: number, maxTiles: number, extra: ConfigJson = {}): ConfigJson {
  const pinpoints: number[][] = [];
  for (let h = 1; h <= 6; h++) for (let w = 1; w <= 6; w++) pinpoints.push([h * tile, w * tile]);
  return siglipQwen2(vision, text, {
    architectures: ['LlavaOnevisionForConditionalGeneration'],
    model_type: 'llava_onevision',
    vision_aspect_ratio: `anyres_max_${maxTiles}`,
    image_grid_pinpoints: pinpoints,
    ...extra,
  });
}

const SIGLIP_SO400M_384 = {
  hidden_size: 1152,
  intermediate_size: 4304,
  num_hidden_layers: 26,
  num_attention_heads: 16,
  image_size: 384,
  patch_size: 14,
};
const QWEN2_05B = {
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 152000,
  max_position_embeddings: 32768,
};
/** 60 px at 14 px patches: a 4 x 4 grid with 4 pixels the conv never reads, as SigLIP's 384 at 14. */
const TINY_SIGLIP = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  image_size: 60,
  patch_size: 14,
};
const TINY_QWEN2 = {
  hidden_size: 64,
  intermediate_size: 80,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 320,
  max_position_embeddings: 1024,
};

const CLIP_L_336 = {
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  image_size: 336,
  patch_size: 14,
};

const DEMO_VISION = {
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  image_size: 336,
  patch_size: 14,
};
const DEMO_TEXT = {
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 32064,
  max_position_embeddings: 2048,
};
const TINY_VISION = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  image_size: 56,
  patch_size: 14,
};
const TINY_TEXT = {
  hidden_size: 64,
  intermediate_size: 80,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 32064,
  max_position_embeddings: 256,
};

export const SHAPES: Record<string, ConfigJson> = {
  'llava-1.5-7b': llava(CLIP_L_336, {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    vocab_size: 32064,
    max_position_embeddings: 4096,
  }),
  'llava-1.5-13b': llava(CLIP_L_336, {
    hidden_size: 5120,
    intermediate_size: 13824,
    num_hidden_layers: 40,
    num_attention_heads: 40,
    num_key_value_heads: 40,
    vocab_size: 32064,
    max_position_embeddings: 4096,
  }),
  /** llava-v1.6-mistral-7b-hf: Mistral-7B-Instruct-v0.2 (GQA 32 / 8 heads, rope_theta 1e6, no sliding window). */
  'llava-next-7b': llavaNext(
    CLIP_L_336,
    {
      model_type: 'mistral',
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      vocab_size: 32064,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      sliding_window: null,
    },
    nextPinpoints(336),
  ),
  /** The demo model: CLIP's full 24 x 24 grid at 336 px, everything else small. */
  demo: llava(DEMO_VISION, DEMO_TEXT),
  /** For tests: a 4 x 4 grid, GQA (4 query heads share 2 key / value heads), LLaMA's vocabulary. */
  tiny: llava(TINY_VISION, TINY_TEXT),
  /** For tests: the tiny shape as LLaVA-NeXT, tiles of 56 px (4 x 4 patches), llava-hf's grids scaled to them. */
  'tiny-next': llavaNext(TINY_VISION, { ...TINY_TEXT, max_position_embeddings: 512 }, nextPinpoints(56)),
  /** llava-onevision-qwen2-0.5b-ov-hf: SigLIP-so400m at 384 px (26 layers used), Qwen2-0.5B, anyres_max_9. */
  'llava-onevision-0.5b': onevision(SIGLIP_SO400M_384, QWEN2_05B, 384, 9),
  /** For tests: OneVision with 60 px tiles and anyres_max_2, so that a 2 x 2 tile grid is downsampled. */
  'tiny-onevision': onevision(TINY_SIGLIP, TINY_QWEN2, 60, 2, { image_token_index: 259 }),
  /** For tests: LLaVA-Interleave's layout (one squashed image, SigLIP, Qwen2). */
  'tiny-interleave': siglipQwen2(TINY_SIGLIP, TINY_QWEN2, {
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: 259,
  }),
  /** The demo model's sizes as LLaVA-NeXT: 336 px tiles, so that real screenshots get real token counts. */
  'demo-next': llavaNext(DEMO_VISION, { ...DEMO_TEXT, max_position_embeddings: 4096 }, nextPinpoints(336)),
};

export function shapeConfig(name: string): ConfigJson {
  const shape = SHAPES[name];
  if (!shape) throw new Error(`unknown shape "${name}": one of ${Object.keys(SHAPES).join(', ')}`);
  return structuredClone(shape);
}
