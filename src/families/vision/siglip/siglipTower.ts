/**
 * SigLIP's vision tower (siglip_vision_model), as LLaVA-OneVision and LLaVA-Interleave use it:
 *
 *   pixel_values (B, 3, S, S)
 *     -> Conv(patch_embedding, stride P, with bias) -> (B, N, C) + position_embedding   (no CLS, no pre-layernorm)
 *     -> encoder layers 0 .. u-1 (full)
 *     -> layer u: layer_norm1 -> q, k; the whole layer     -> hidden (B, N, C) = hidden_states[u + 1]
 *     -> received (B, N): softmax(q k^T / sqrt(d)) per head, averaged over heads and queries
 *
 * u = num_layers + vision_feature_layer (25 for the 26 layers and -1 of the 0.5B checkpoints):
 * the layer whose output the projector reads. post_layernorm and the pooling head are not used
 * by LLaVA. Without a CLS token, PruMerge scores each patch by the attention it receives in u,
 * and merges by u's keys (docs/prumerge.md, "Towers without a CLS token").
 */
import { attr } from '../../../onnx/onnxGraph';
import { CheckpointError } from '../../../checkpoint/safetensors';
import { layerNormSpecs, TensorSpec } from '../../../checkpoint/tensorSpec';
import { siglipPreprocess } from '../../../format/preprocessConfig';
import { VISION_IO } from '../../../format/graphNames';
import { int, Json, num, oneOf } from '../../../checkpoint/configFields';
import type { VisionTowerFamily } from '../../family';
import { encoderLayerSpecs, makeEncoderLayer, makePatchEmbedding, makeQk, readsTowerTensor } from '../encoderLayer';
import { VISION } from '../../../checkpoint/weights';

export const SIGLIP: VisionTowerFamily = {
  id: 'siglip',
  modelType: 'siglip_vision_model',
  score: 'received',
  selectStrategy: 'full',

  /** SiglipVisionConfig's defaults. */
  config: (v: Json) => ({
    hiddenSize: int(v, 'hidden_size', 768, 'vision_config'),
    intermediateSize: int(v, 'intermediate_size', 3072, 'vision_config'),
    numLayers: int(v, 'num_hidden_layers', 12, 'vision_config'),
    numHeads: int(v, 'num_attention_heads', 12, 'vision_config'),
    imageSize: int(v, 'image_size', 224, 'vision_config'),
    patchSize: int(v, 'patch_size', 16, 'vision_config'),
    numChannels: int(v, 'num_channels', 3, 'vision_config'),
    layerNormEps: num(v, 'layer_norm_eps', 1e-6, 'vision_config'),
    hiddenAct: oneOf(v, 'hidden_act', 'gelu_pytorch_tanh', ['gelu_pytorch_tanh', 'gelu'], 'vision_config'),
  }),

  defaultPreprocess: (imageSize) => siglipPreprocess(imageSize),

  scoreLayer: (config) => {
    const { numLayers } = config.vision;
    const producer = numLayers + config.visionFeatureLayer;
    if (config.visionFeatureLayer >= 0 || producer < 0) {
      throw new CheckpointError(
        `vision_feature_layer ${config.visionFeatureLayer} is not supported for a SigLIP tower: it must name an encoder layer's output, -${numLayers} to -1`,
      );
    }
    return producer;
  },

  tensors: (v) => {
    const c = v.hiddenSize;
    // the conv covers grid * patch pixels; a remainder (384 = 27 * 14 + 6) is never read
    const grid = Math.floor(v.imageSize / v.patchSize);
    const specs: TensorSpec[] = [
      { name: `${VISION}.embeddings.patch_embedding.weight`, shape: [c, v.numChannels, v.patchSize, v.patchSize], init: 'weight' },
      { name: `${VISION}.embeddings.patch_embedding.bias`, shape: [c], init: 'bias' },
      { name: `${VISION}.embeddings.position_embedding.weight`, shape: [grid * grid, c], init: 'embedding' },
    ];
    for (let i = 0; i < v.numLayers; i++) specs.push(...encoderLayerSpecs(v, i));
    specs.push(...layerNormSpecs(`${VISION}.post_layernorm`, c));
    return specs;
  },

  reads: (name, config) => readsTowerTensor(name, SIGLIP.scoreLayer(config), true),

  async makeGraph(ops, config, format) {
    const { g } = ops;
    const v = config.vision;
    const c = v.hiddenSize;
    const { patches, grid } = await makePatchEmbedding(ops, v, true);
    const n = grid * grid;
    const heads = v.numHeads;
    const d = c / heads;

    const pos = await ops.tensor(`${VISION}.embeddings.position_embedding.weight`, [n, c]);
    let [h] = g.node('Add', '/vision/embeddings/Add', [patches, pos]) as [string];

    const last = SIGLIP.scoreLayer(config);
    for (let i = 0; i < last; i++) h = await makeEncoderLayer(ops, v, i, h, format(i));
    const taps = await makeQk(ops, v, last, h, format(last));
    h = await makeEncoderLayer(ops, v, last, h, format(last), taps);

    // received attention: (B, N, C) -> (B, H, N, d) and (B, H, d, N) -> softmax rows -> mean over heads and queries
    const node = `/vision/layers.${last}/received`;
    const [qh] = g.node('Reshape', `${node}/q/Reshape`, [taps.q, g.int64s([0, n, heads, d])]);
    const [qt] = g.node('Transpose', `${node}/q/Transpose`, [qh!], { perm: attr.ints([0, 2, 1, 3]) });
    const [kh] = g.node('Reshape', `${node}/k/Reshape`, [taps.k, g.int64s([0, n, heads, d])]);
    const [kt] = g.node('Transpose', `${node}/k/Transpose`, [kh!], { perm: attr.ints([0, 2, 3, 1]) });
    const [logits] = g.node('MatMul', `${node}/MatMul`, [qt!, kt!]);
    const scale = g.initializer(`${node}/scale`, ops.floats(Float32Array.of(1 / Math.sqrt(d))), [], ops.floatType);
    const [scaled] = g.node('Mul', `${node}/Mul`, [logits!, scale]);
    const [probs] = g.node('Softmax', `${node}/Softmax`, [scaled!], { axis: attr.i(-1) });
    const [received] = g.node('ReduceMean', `${node}/ReduceMean`, [probs!, g.int64s([1, 2])], { keepdims: attr.i(0) });

    ops.output('/vision/output/hidden', h, VISION_IO.hidden, ['batch', n, c]);
    ops.output('/vision/output/k', taps.k, VISION_IO.k, ['batch', n, c]);
    ops.output('/vision/output/received', received!, VISION_IO.received, ['batch', n]);
  },
};
