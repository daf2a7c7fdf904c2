/**
 * The transformer layer CLIP's and SigLIP's towers share (same tensor names, biases everywhere):
 *
 *   h -> layer_norm1 -> q, k, v -> MultiHeadAttention -> out_proj -> + h
 *     -> layer_norm2 -> fc1 -> act -> fc2 -> +
 */
import { LinearFormat, Ops } from '../../onnx/ops';
import { attr, DataType, MS_DOMAIN } from '../../onnx/onnxGraph';
import { VISION_IO } from '../../format/graphNames';
import { layerNormSpecs, linearSpecs, TensorSpec } from '../../checkpoint/tensorSpec';
import { VISION } from '../../checkpoint/weights';
import type { VisionConfig } from '../family';

/** The graph output that holds encoder layer `i`'s input, in a graph built with `ops.tapLayerInputs` (the int8 check). */
export function layerInputName(i: number): string {
  return `layer_input.${i}`;
}

export function encoderLayerSpecs(v: VisionConfig, i: number): TensorSpec[] {
  const c = v.hiddenSize;
  const p = `${VISION}.encoder.layers.${i}`;
  const specs: TensorSpec[] = [];
  for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) specs.push(...linearSpecs(`${p}.self_attn.${proj}`, c, c, true));
  specs.push(...layerNormSpecs(`${p}.layer_norm1`, c), ...linearSpecs(`${p}.mlp.fc1`, c, v.intermediateSize, true));
  specs.push(...linearSpecs(`${p}.mlp.fc2`, v.intermediateSize, c, true), ...layerNormSpecs(`${p}.layer_norm2`, c));
  return specs;
}

/**
 * Whether a build that stops in layer `last` (its layer_norm1, q and k only, unless `lastWhole`)
 * reads the tower's tensor `name`.
 */
export function readsTowerTensor(name: string, last: number, lastWhole: boolean): boolean {
  if (name.startsWith(`${VISION}.post_layernorm`) || name.startsWith(`${VISION}.head.`)) return false;
  const m = /^vision_tower\.vision_model\.encoder\.layers\.(\d+)\.(.*)$/.exec(name);
  if (!m) return true;
  const i = Number(m[1]);
  if (i < last || (i === last && lastWhole)) return true;
  return i === last && /^(layer_norm1|self_attn\.q_proj|self_attn\.k_proj)\./.test(m[2]!);
}

export interface QkNames {
  /** layer_norm1(h) projected by q_proj and k_proj, biases included. */
  readonly q: string;
  readonly k: string;
}

/** layer_norm1 -> q_proj, k_proj of layer `i`: what PruMerge reads. */
export async function makeQk(ops: Ops, v: VisionConfig, i: number, h: string, format: LinearFormat): Promise<QkNames & { x: string }> {
  const c = v.hiddenSize;
  const p = `${VISION}.encoder.layers.${i}`;
  const node = `/vision/layers.${i}`;
  if (ops.tapLayerInputs) ops.output(`${node}/input`, h, layerInputName(i), ['batch', 'tokens', c]);
  const x = await ops.makeLayerNorm(`${node}/layer_norm1`, `${p}.layer_norm1`, h, c, v.layerNormEps);
  const q = await ops.makeLinear(`${node}/attn/q_proj`, `${p}.self_attn.q_proj`, x, c, c, { bias: true, format, use: 'encode' });
  const k = await ops.makeLinear(`${node}/attn/k_proj`, `${p}.self_attn.k_proj`, x, c, c, { bias: true, format, use: 'encode' });
  return { x, q, k };
}

/** The whole layer `i` on `h`; `taps` when its q / k were made already. */
export async function makeEncoderLayer(
  ops: Ops,
  v: VisionConfig,
  i: number,
  h: string,
  format: LinearFormat,
  taps?: QkNames & { x: string },
): Promise<string> {
  const { g } = ops;
  const c = v.hiddenSize;
  const p = `${VISION}.encoder.layers.${i}`;
  const node = `/vision/layers.${i}`;
  const { x, q, k } = taps ?? (await makeQk(ops, v, i, h, format));
  const vv = await ops.makeLinear(`${node}/attn/v_proj`, `${p}.self_attn.v_proj`, x, c, c, { bias: true, format, use: 'encode' });
  // scale defaults to 1 / sqrt(head_dim), as in CLIPAttention and SiglipAttention; no mask: every token sees every token
  const [attn] = g.node(
    'MultiHeadAttention',
    `${node}/attn/MultiHeadAttention`,
    [q, k, vv],
    { num_heads: attr.i(v.numHeads) },
    { domain: MS_DOMAIN },
  );
  const o = await ops.makeLinear(`${node}/attn/out_proj`, `${p}.self_attn.out_proj`, attn!, c, c, { bias: true, format, use: 'encode' });
  const [h1] = g.node('Add', `${node}/attn/residual/Add`, [h, o]);
  const x2 = await ops.makeLayerNorm(`${node}/layer_norm2`, `${p}.layer_norm2`, h1!, c, v.layerNormEps);
  const up = await ops.makeLinear(`${node}/mlp/fc1`, `${p}.mlp.fc1`, x2, c, v.intermediateSize, { bias: true, format, use: 'encode' });
  const act = ops.makeActivation(`${node}/mlp/act`, up, v.hiddenAct);
  const down = await ops.makeLinear(`${node}/mlp/fc2`, `${p}.mlp.fc2`, act, v.intermediateSize, c, { bias: true, format, use: 'encode' });
  return g.node('Add', `${node}/mlp/residual/Add`, [h1!, down])[0]!;
}

/**
 *   pixel_values (B, 3, S, S) -> Conv(patch_embedding, stride P) -> (B, N, C) patch rows
 * The conv's "valid" padding leaves out the pixels past grid * P (SigLIP's 384 at 14: 6 of them).
 */
export async function makePatchEmbedding(
  ops: Ops,
  v: VisionConfig,
  bias: boolean,
): Promise<{ input: string; patches: string; grid: number }> {
  const { g } = ops;
  const c = v.hiddenSize;
  const grid = Math.floor(v.imageSize / v.patchSize);
  const input = g.input(VISION_IO.pixels, DataType.FLOAT, ['batch', v.numChannels, v.imageSize, v.imageSize]);
  const pixels = ops.fromFloat32('/vision/input', input);
  const weights = [await ops.tensor(`${VISION}.embeddings.patch_embedding.weight`, [c, v.numChannels, v.patchSize, v.patchSize])];
  if (bias) weights.push(await ops.tensor(`${VISION}.embeddings.patch_embedding.bias`, [c]));
  const [conv] = g.node('Conv', '/vision/embeddings/patch_embedding/Conv', [pixels, ...weights], {
    kernel_shape: attr.ints([v.patchSize, v.patchSize]),
    strides: attr.ints([v.patchSize, v.patchSize]),
  }); // (B, C, grid, grid)
  const [flat] = g.node('Reshape', '/vision/embeddings/Reshape', [conv!, g.int64s([0, c, grid * grid])]);
  const [patches] = g.node('Transpose', '/vision/embeddings/Transpose', [flat!], { perm: attr.ints([0, 2, 1]) });
  return { input, patches: patches!, grid };
}
