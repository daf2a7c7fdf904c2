/**
 * Qwen2 text models: LLaMA's graph with biases on q_proj, k_proj and v_proj, Qwen2Config's
 * defaults, tied embeddings where the checkpoint says so, and sliding-window attention refused
 * when it is switched on and shorter than the context.
 */
import type { TextModelFamily } from '../../family';
import { makeDecoderGraph } from '../llama/decoderGraph';
import { llamaTensors } from '../llama/llamaTensors';
import { checkLlamaLike, refuseShortWindow, textConfigWith } from '../llama/llamaText';
import { CHATML_IMAGE_TEMPLATE, qwen2TokenizerConfig, qwen2TokenizerJson } from './qwen2Tokenizer';

export const QWEN2: TextModelFamily = {
  id: 'qwen2',
  modelType: 'qwen2',
  config: (t, tieAtTop) =>
    textConfigWith(
      {
        hiddenSize: 4096,
        intermediateSize: 22016,
        numLayers: 32,
        numHeads: 32,
        numKvHeads: 32,
        vocabSize: 151936,
        rmsNormEps: 1e-6,
        ropeTheta: 10000,
        maxPositions: 32768,
      },
      t,
      tieAtTop,
      true,
    ),
  check: (t, config) => {
    checkLlamaLike(t);
    if (t['use_sliding_window'] === true) refuseShortWindow(t['sliding_window'] ?? 4096, config.maxPositionEmbeddings);
  },
  tensors: llamaTensors,
  makeGraph: makeDecoderGraph,
  syntheticTokenizer: (imageTokenIndex) => ({
    tokenizerJson: qwen2TokenizerJson(imageTokenIndex),
    tokenizerConfig: qwen2TokenizerConfig(),
    chatTemplate: CHATML_IMAGE_TEMPLATE,
  }),
};
