/**
 * LLaMA-family text models (llama, mistral): LlamaConfig's and MistralConfig's defaults, their
 * tensors (llamaTensors.ts) and decoder graph (decoderGraph.ts, which Qwen2 shares), and the
 * tokenizer a synthetic build of them gets (LLaMA's, docs/models.md).
 */
import { CheckpointError } from '../../../checkpoint/safetensors';
import { int, Json, num } from '../../../checkpoint/configFields';
import type { TextConfig, TextModelFamily } from '../../family';
import { makeDecoderGraph } from './decoderGraph';
import { llamaTensors } from './llamaTensors';
import { LLAVA_15_CHAT_TEMPLATE, LLAVA_MISTRAL_CHAT_TEMPLATE, llamaTokenizerConfig, llamaTokenizerJson } from './llamaTokenizer';

interface Defaults {
  readonly intermediateSize: number;
  readonly numKvHeads: number | undefined; // undefined: as many as the query heads
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositions: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
}

const LLAMA_DEFAULTS: Defaults = {
  hiddenSize: 4096,
  intermediateSize: 11008,
  numLayers: 32,
  numHeads: 32,
  numKvHeads: undefined,
  vocabSize: 32000,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositions: 2048,
};

/** text_config read with `d` where a field is absent. */
export function textConfigWith(d: Defaults, t: Json, tieAtTop: unknown, attentionBias: boolean): TextConfig {
  const numHeads = int(t, 'num_attention_heads', d.numHeads, 'text_config');
  const hiddenSize = int(t, 'hidden_size', d.hiddenSize, 'text_config');
  return {
    hiddenSize,
    intermediateSize: int(t, 'intermediate_size', d.intermediateSize, 'text_config'),
    numLayers: int(t, 'num_hidden_layers', d.numLayers, 'text_config'),
    numHeads,
    numKvHeads: int(t, 'num_key_value_heads', d.numKvHeads ?? numHeads, 'text_config'),
    headDim: int(t, 'head_dim', Math.floor(hiddenSize / numHeads), 'text_config'),
    vocabSize: int(t, 'vocab_size', d.vocabSize, 'text_config'),
    rmsNormEps: num(t, 'rms_norm_eps', d.rmsNormEps, 'text_config'),
    ropeTheta: num(t, 'rope_theta', d.ropeTheta, 'text_config'),
    maxPositionEmbeddings: int(t, 'max_position_embeddings', d.maxPositions, 'text_config'),
    tieWordEmbeddings: (t['tie_word_embeddings'] ?? tieAtTop ?? false) === true,
    attentionBias,
  };
}

/** What every text model's graph needs: silu MLPs, no rope scaling. */
export function checkLlamaLike(t: Json): void {
  const scaling = t['rope_scaling'];
  if (scaling !== undefined && scaling !== null) {
    throw new CheckpointError(`text_config.rope_scaling ${JSON.stringify(scaling)} is not supported yet`);
  }
  if (t['hidden_act'] !== undefined && t['hidden_act'] !== 'silu') {
    throw new CheckpointError(`text_config.hidden_act ${JSON.stringify(t['hidden_act'])} is not supported (LLaMA-family models use silu)`);
  }
}

/** Sliding-window attention is not built: a window shorter than the context would change the answers. */
export function refuseShortWindow(window: unknown, context: number): void {
  if (window !== null && typeof window === 'number' && window < context) {
    throw new CheckpointError(
      `text_config.sliding_window ${window} is shorter than the context (${context} positions): sliding-window attention is not supported`,
    );
  }
}

export const LLAMA: TextModelFamily = {
  id: 'llama',
  modelType: 'llama',
  config: (t, tieAtTop) => textConfigWith(LLAMA_DEFAULTS, t, tieAtTop, false),
  check: (t) => checkLlamaLike(t),
  tensors: llamaTensors,
  makeGraph: makeDecoderGraph,
  syntheticTokenizer: () => ({
    tokenizerJson: llamaTokenizerJson(),
    tokenizerConfig: llamaTokenizerConfig(),
    chatTemplate: LLAVA_15_CHAT_TEMPLATE,
  }),
};

export const MISTRAL: TextModelFamily = {
  id: 'mistral',
  modelType: 'mistral',
  config: (t, tieAtTop) =>
    textConfigWith({ ...LLAMA_DEFAULTS, intermediateSize: 14336, numKvHeads: 8, maxPositions: 4096 * 32 }, t, tieAtTop, false),
  check: (t, config) => {
    checkLlamaLike(t);
    refuseShortWindow(t['sliding_window'] === undefined ? 4096 : t['sliding_window'], config.maxPositionEmbeddings); // MistralConfig's default
  },
  tensors: llamaTensors,
  makeGraph: makeDecoderGraph,
  syntheticTokenizer: () => ({
    tokenizerJson: llamaTokenizerJson(),
    tokenizerConfig: llamaTokenizerConfig(),
    chatTemplate: LLAVA_MISTRAL_CHAT_TEMPLATE,
  }),
};
