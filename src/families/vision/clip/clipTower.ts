/**
 * CLIP's vision tower (clip_vision_model), up to what PruMerge needs and no further:
 *
 *   pixel_values (B, 3, S, S): one image, or an anyres layout's overview and tiles
 *     -> Conv(patch_embedding, stride P, no bias) -> (B, N, C); [class_embedding ; patches] + position_embedding
 *     -> pre_layrnorm                                           = hidden_states[0]
 *     -> encoder layers 0 .. f-1 (full)                         -> hidden (B, N+1, C) = hidden_states[f]
 *     -> layer f: layer_norm1 -> q_proj, k_proj                 -> q, k   (B, N+1, C)
 *
 * f = num_layers + 1 + vision_feature_layer (23 for LLaVA-1.5's -2 of 24 layers). Layer f's
 * attention output and MLP, and the layers after it, are never computed: PruMerge scores patches
 * by the CLS query's attention in the layer that consumes the features.
 */
import { CheckpointError } from '../../../checkpoint/safetensors';
import { attr } from '../../../onnx/onnxGraph';
import { layerNormSpecs, TensorSpec } from '../../../checkpoint/tensorSpec';
import { clipPreprocess } from '../../../format/preprocessConfig';
import { VISION_IO } from '../../../format/graphNames';
import { int, Json, num, oneOf } from '../../../checkpoint/configFields';
import type { VisionConfig, VisionTowerFamily } from '../../family';
import { encoderLayerSpecs, makeEncoderLayer, makePatchEmbedding, makeQk, readsTowerTensor } from '../encoderLayer';
import { VISION } from '../../../checkpoint/weights';

function clipConfig(v: Json): VisionConfig {
  return {
    hiddenSize: int(v, 'hidden_size', 768, 'vision_config'),
    intermediateSize: int(v, 'intermediate_size', 3072, 'vision_config'),
    numLayers: int(v, 'num_hidden_layers', 12, 'vision_config'),
    numHeads: int(v, 'num_attention_heads', 12, 'vision_config'),
    imageSize: int(v, 'image_size', 224, 'vision_config'),
    patchSize: int(v, 'patch_size', 32, 'vision_config'),
    numChannels: int(v, 'num_channels', 3, 'vision_config'),
    layerNormEps: num(v, 'layer_norm_eps', 1e-5, 'vision_config'),
    hiddenAct: oneOf(v, 'hidden_act', 'quick_gelu', ['quick_gelu', 'gelu'], 'vision_config'),
  };
}

export const CLIP: VisionTowerFamily = {
  id: 'clip',
  modelType: 'clip_vision_model',
  score: 'cls',
  selectStrategy: 'default',

  /** CLIPVisionConfig's defaults; the grid must cover the image exactly (its position table has a row per patch and CLS). */
  config: (v: Json) => {
    const c = clipConfig(v);
    if (c.imageSize % c.patchSize !== 0)
      throw new CheckpointError(`vision_config: image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
    return c;
  },

  defaultPreprocess: (imageSize) => clipPreprocess(imageSize),

  scoreLayer: (config) => {
    const { numLayers } = config.vision;
    const consumer = numLayers + 1 + config.visionFeatureLayer;
    if (config.visionFeatureLayer >= -1 || consumer < 0) {
      throw new CheckpointError(
        `vision_feature_layer ${config.visionFeatureLayer} is not supported: PruMerge needs a feature layer from -${numLayers} to -2 (it reads the CLS attention of the layer after it)`,
      );
    }
    return consumer;
  },

  tensors: (v) => {
    const c = v.hiddenSize;
    const grid = v.imageSize / v.patchSize;
    const specs: TensorSpec[] = [
      { name: `${VISION}.embeddings.class_embedding`, shape: [c], init: 'embedding' },
      { name: `${VISION}.embeddings.patch_embedding.weight`, shape: [c, v.numChannels, v.patchSize, v.patchSize], init: 'weight' },
      { name: `${VISION}.embeddings.position_embedding.weight`, shape: [grid * grid + 1, c], init: 'embedding' },
      ...layerNormSpecs(`${VISION}.pre_layrnorm`, c),
    ];
    for (let i = 0; i < v.numLayers; i++) specs.push(...encoderLayerSpecs(v, i));
    specs.push(...layerNormSpecs(`${VISION}.post_layernorm`, c));
    return specs;
  },

  reads: (name, config) => readsTowerTensor(name, CLIP.scoreLayer(config), false),

  async makeGraph(ops, config, format) {
    const { g } = ops;
    const v = config.vision;
    const c = v.hiddenSize;
    const { input, patches, grid } = await makePatchEmbedding(ops, v, false);
    const tokens = grid * grid + 1;
    const cls = await ops.tensor(`${VISION}.embeddings.class_embedding`, [c], [1, 1, c]);
    const [batch] = g.node('Shape', '/vision/embeddings/Shape', [input], { start: attr.i(0), end: attr.i(1) });
    const [clsShape] = g.node('Concat', '/vision/embeddings/cls/Concat', [batch!, g.int64s([1, c])], { axis: attr.i(0) });
    const [clsRows] = g.node('Expand', '/vision/embeddings/cls/Expand', [cls, clsShape!]); // (B, 1, C)
    const [withCls] = g.node('Concat', '/vision/embeddings/Concat', [clsRows!, patches], { axis: attr.i(1) }); // (B, N+1, C)
    const pos = await ops.tensor(`${VISION}.embeddings.position_embedding.weight`, [tokens, c]);
    const [embedded] = g.node('Add', '/vision/embeddings/Add', [withCls!, pos]);
    let h = await ops.makeLayerNorm('/vision/pre_layrnorm', `${VISION}.pre_layrnorm`, embedded!, c, v.layerNormEps);

    const last = CLIP.scoreLayer(config);
    for (let i = 0; i < last; i++) h = await makeEncoderLayer(ops, v, i, h, format(i));
    const { q, k } = await makeQk(ops, v, last, h, format(last));
    ops.output('/vision/output/hidden', h, VISION_IO.hidden, ['batch', tokens, c]);
    ops.output('/vision/output/q', q, VISION_IO.q, ['batch', tokens, c]);
    ops.output('/vision/output/k', k, VISION_IO.k, ['batch', tokens, c]);
  },
};
