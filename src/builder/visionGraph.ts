/**
 * vision.onnx: CLIP's vision tower up to what PruMerge needs, and no further.
 *
 *   pixel_values (B, 3, S, S): one image, or LLaVA-NeXT's overview and tiles
 *     -> Conv(patch_embedding, stride P) -> (B, N, C); [class_embedding ; patches] + position_embedding
 *     -> pre_layrnorm                                           = hidden_states[0]
 *     -> encoder layers 0 .. f-1 (full)                         -> hidden (B, N+1, C) = hidden_states[f]
 *     -> layer f: layer_norm1 -> q_proj, k_proj                 -> q, k   (B, N+1, C)
 *
 * f = num_layers + 1 + vision_feature_layer (23 for LLaVA-1.5's -2 of 24 layers). Layer f's
 * attention output and MLP, and the layers after it, are never computed.
 */
import { VISION_IO } from '../pipeline/runtime/graphNames';
import { LlavaConfig } from './llavaConfig';
import { attr, DataType } from './onnxGraph';
import { LinearFormat, Ops } from './ops';
import { VISION } from './weights';

/** The encoder layer whose q / k PruMerge reads, and which the hidden states feed. */
export function featureLayer(config: LlavaConfig): number {
  return config.vision.numLayers + 1 + config.visionFeatureLayer;
}

export async function makeVisionGraph(ops: Ops, config: LlavaConfig, format: LinearFormat = 'float'): Promise<void> {
  const { g } = ops;
  const v = config.vision;
  const c = v.hiddenSize;
  const grid = v.imageSize / v.patchSize;
  const tokens = grid * grid + 1;

  const input = g.input(VISION_IO.pixels, DataType.FLOAT, ['batch', v.numChannels, v.imageSize, v.imageSize]);
  const pixels = ops.fromFloat32('/vision/input', input);
  const patchW = await ops.tensor(`${VISION}.embeddings.patch_embedding.weight`, [c, v.numChannels, v.patchSize, v.patchSize]);
  const [conv] = g.node('Conv', '/vision/embeddings/patch_embedding/Conv', [pixels, patchW], {
    kernel_shape: attr.ints([v.patchSize, v.patchSize]),
    strides: attr.ints([v.patchSize, v.patchSize]),
  }); // (B, C, grid, grid)
  const [flat] = g.node('Reshape', '/vision/embeddings/Reshape', [conv!, g.int64s([0, c, grid * grid])]); // (B, C, N)
  const [patches] = g.node('Transpose', '/vision/embeddings/Transpose', [flat!], { perm: attr.ints([0, 2, 1]) }); // (B, N, C)
  const cls = await ops.tensor(`${VISION}.embeddings.class_embedding`, [c], [1, 1, c]);
  const [batch] = g.node('Shape', '/vision/embeddings/Shape', [input], { start: attr.i(0), end: attr.i(1) });
  const [clsShape] = g.node('Concat', '/vision/embeddings/cls/Concat', [batch!, g.int64s([1, c])], { axis: attr.i(0) });
  const [clsRows] = g.node('Expand', '/vision/embeddings/cls/Expand', [cls, clsShape!]); // (B, 1, C)
  const [withCls] = g.node('Concat', '/vision/embeddings/Concat', [clsRows!, patches!], { axis: attr.i(1) }); // (B, N+1, C)
  const pos = await ops.tensor(`${VISION}.embeddings.position_embedding.weight`, [tokens, c]);
  const [embedded] = g.node('Add', '/vision/embeddings/Add', [withCls!, pos]);
  let h = await ops.makeLayerNorm('/vision/pre_layrnorm', `${VISION}.pre_layrnorm`, embedded!, c, v.layerNormEps);

  const last = featureLayer(config);
  for (let i = 0; i < last; i++) h = await makeEncoderLayer(ops, config, i, h, format);

  // layer `last`: only what the CLS attention needs
  const p = `${VISION}.encoder.layers.${last}`;
  const node = `/vision/layers.${last}`;
  const x = await ops.makeLayerNorm(`${node}/layer_norm1`, `${p}.layer_norm1`, h, c, v.layerNormEps);
  const q = await ops.makeLinear(`${node}/attn/q_proj`, `${p}.self_attn.q_proj`, x, c, c, { bias: true, format, use: 'encode' });
  const k = await ops.makeLinear(`${node}/attn/k_proj`, `${p}.self_attn.k_proj`, x, c, c, { bias: true, format, use: 'encode' });
  ops.output('/vision/output/hidden', h, VISION_IO.hidden, ['batch', tokens, c]);
  ops.output('/vision/output/q', q, VISION_IO.q, ['batch', tokens, c]);
  ops.output('/vision/output/k', k, VISION_IO.k, ['batch', tokens, c]);
}

/**
 *   h -> layer_norm1 -> q, k, v -> MultiHeadAttention -> out_proj -> + h
 *     -> layer_norm2 -> fc1 -> act -> fc2 -> +
 */
async function makeEncoderLayer(ops: Ops, config: LlavaConfig, i: number, h: string, format: LinearFormat): Promise<string> {
  const { g } = ops;
  const v = config.vision;
  const c = v.hiddenSize;
  const p = `${VISION}.encoder.layers.${i}`;
  const node = `/vision/layers.${i}`;
  const x = await ops.makeLayerNorm(`${node}/layer_norm1`, `${p}.layer_norm1`, h, c, v.layerNormEps);
  const q = await ops.makeLinear(`${node}/attn/q_proj`, `${p}.self_attn.q_proj`, x, c, c, { bias: true, format, use: 'encode' });
  const k = await ops.makeLinear(`${node}/attn/k_proj`, `${p}.self_attn.k_proj`, x, c, c, { bias: true, format, use: 'encode' });
  const vv = await ops.makeLinear(`${node}/attn/v_proj`, `${p}.self_attn.v_proj`, x, c, c, { bias: true, format, use: 'encode' });
  // scale defaults to 1 / sqrt(head_dim), as in CLIPAttention; no mask: every token sees every token
  const [attn] = g.node(
    'MultiHeadAttention',
    `${node}/attn/MultiHeadAttention`,
    [q, k, vv],
    { num_heads: attr.i(v.numHeads) },
    { domain: 'com.microsoft' },
  );
  const o = await ops.makeLinear(`${node}/attn/out_proj`, `${p}.self_attn.out_proj`, attn!, c, c, { bias: true, format, use: 'encode' });
  const [h1] = g.node('Add', `${node}/attn/residual/Add`, [h, o]);
  const x2 = await ops.makeLayerNorm(`${node}/layer_norm2`, `${p}.layer_norm2`, h1!, c, v.layerNormEps);
  const up = await ops.makeLinear(`${node}/mlp/fc1`, `${p}.mlp.fc1`, x2, c, v.intermediateSize, { bias: true, format, use: 'encode' });
  const act = ops.makeActivation(`${node}/mlp/act`, up, v.hiddenAct);
  const down = await ops.makeLinear(`${node}/mlp/fc2`, `${p}.mlp.fc2`, act, v.intermediateSize, c, { bias: true, format, use: 'encode' });
  return g.node('Add', `${node}/mlp/residual/Add`, [h1!, down])[0]!;
}
