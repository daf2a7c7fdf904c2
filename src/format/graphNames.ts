/**
 * The input and output names of the three graphs in a model folder: the builders write them, the
 * engine and the tests feed and read them. Hugging Face's own names where it has one
 * (`pixel_values`, `inputs_embeds`, `past_key_values.N.key`), so that a graph reads like the
 * transformers code it mirrors.
 */
export const VISION_IO = {
  /** (B, 3, S, S) float32, normalised pixels: one image, or LLaVA-NeXT's sub-images. */
  pixels: 'pixel_values',
  /** (B, N+1, C) hidden_states[-2], CLS first (CLIP); (B, N, C) the features SigLIP's layout uses. */
  hidden: 'hidden',
  /** (B, N+1, C) the consuming layer's q_proj / k_proj on layer_norm1(hidden) (CLIP; SigLIP: k only, of the producing layer). */
  q: 'q',
  k: 'k',
  /** (B, N) towers without CLS: the attention each patch receives, averaged over heads and queries (docs/prumerge.md). */
  received: 'received_attention',
} as const;

export const PROJECTOR_IO = {
  /** (M, C_vision) the reduced visual tokens. */
  features: 'image_features',
  /** (M, C_text) what enters the prompt. */
  embeds: 'image_embeds',
} as const;

export const DECODER_IO = {
  /** (1, S, H) float32. */
  embeds: 'inputs_embeds',
  /** (1) int32: P + S - 1. */
  seqlensK: 'seqlens_k',
  /** () int32: P + S. */
  totalSequenceLength: 'total_sequence_length',
  /** (1, kv, P, d) the cache going in. */
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  /** (1, 1, V) the last position's logits. */
  logits: 'logits',
  /** (1, kv, P + S, d) the cache coming out. */
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
  /** (1, kv, S, d) this run's positions of `present`: what a cache the engine holds itself appends. */
  newKey: (i: number) => `new.${i}.key`,
  newValue: (i: number) => `new.${i}.value`,
} as const;
