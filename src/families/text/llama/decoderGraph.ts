/**
 * decoder.onnx: the LLaMA-family language model with a KV cache, on input embeddings (the
 * engine splices the projected visual tokens into the text embeddings itself).
 *
 *   inputs_embeds (1, S, H)                      seqlens_k (1) int32 = P + S - 1
 *   past_key_values.{i}.key/value (1, kv, P, d)  total_sequence_length () int32 = P + S
 *     layer i:  x = RMSNorm(h)  (Skip form: adds the previous block's output into the residual)
 *               q, k, v = x Wq, x Wk, x Wv   (+ biases for Qwen2)
 *               a, present = GroupQueryAttention(q, k, v, past; rotary on q and k at P..P+S-1)
 *               h += a Wo;  x = RMSNorm(h);  h += (silu(x Wgate) * x Wup) Wdown
 *     RMSNorm(h)[last position] -> lm_head      -> logits (1, 1, V)
 *                                                -> present.{i}.key/value (1, kv, P + S, d)
 *
 * Positions follow from the cache length, so a prompt can be filled in one run or in chunks,
 * and a conversation goes on from its cache. Only the last position's logits are computed: the
 * vocabulary projection of every prompt position would cost as much as a second forward pass.
 */
import { DECODER_IO } from '../../../format/graphNames';
import type { LlavaConfig } from '../../family';
import { attr, DataType, MS_DOMAIN } from '../../../onnx/onnxGraph';
import { floatsToHalfs } from '../../../common/float16';
import { LinearFormat, Ops } from '../../../onnx/ops';
import { LM_HEAD, TEXT } from '../../../checkpoint/weights';

export async function makeDecoderGraph(
  ops: Ops,
  config: LlavaConfig,
  format: LinearFormat = 'float',
  /** float16: attention and its KV cache in float16 around float32 layers (half the cache to hold and read). */
  kvType: DataType = ops.floatType,
): Promise<void> {
  const { g } = ops;
  const t = config.text;
  const h = t.hiddenSize;
  const embeds = ops.fromFloat32('/model/inputs_embeds', g.input(DECODER_IO.embeds, DataType.FLOAT, [1, 'sequence_length', h]));
  const [cos, sin] = rotaryCaches(t.maxPositionEmbeddings, t.headDim, t.ropeTheta);
  const asKv = (x: Float32Array): Float32Array | Uint16Array => (kvType === DataType.FLOAT16 ? floatsToHalfs(x) : x);
  const shared: SharedInputs = {
    seqlensK: g.input(DECODER_IO.seqlensK, DataType.INT32, [1]),
    total: g.input(DECODER_IO.totalSequenceLength, DataType.INT32, []),
    cosCache: g.initializer('/model/rotary/cos_cache', asKv(cos), [t.maxPositionEmbeddings, t.headDim / 2], kvType),
    sinCache: g.initializer('/model/rotary/sin_cache', asKv(sin), [t.maxPositionEmbeddings, t.headDim / 2], kvType),
    kvType,
    ...newPositionsRange(ops, embeds),
  };

  // residual stream: `residual` holds h; `pending` is the block output not yet added to it
  let stream: Stream = { residual: embeds, pending: undefined };
  for (let i = 0; i < t.numLayers; i++) stream = await makeLayer(ops, config, i, stream, shared, format);

  const [normed] = await rmsNorm(ops, '/model/norm', `${TEXT}.norm.weight`, stream, h, t.rmsNormEps);
  const [lastPos] = g.node('Slice', '/model/last_position/Slice', [normed, g.int64s([-1]), g.int64s([2 ** 53]), g.int64s([1])]); // (1, 1, H)
  const headName = t.tieWordEmbeddings ? `${TEXT}.embed_tokens` : LM_HEAD.replace(/\.weight$/, '');
  const logits = await ops.makeLinear('/lm_head', headName, lastPos!, h, t.vocabSize, { bias: false, format });
  ops.output('/lm_head/output', logits, DECODER_IO.logits, [1, 1, t.vocabSize]);
}

/** Graph values every layer reads. */
interface SharedInputs {
  readonly seqlensK: string;
  readonly total: string;
  readonly cosCache: string;
  readonly sinCache: string;
  /** The element type of attention's inputs and of the KV cache. */
  readonly kvType: DataType;
  /** [P] and [P + S] as int64: where this run's positions sit in `present`. */
  readonly newFrom: string;
  readonly newTo: string;
}

/**
 * P = total_sequence_length - S and P + S, for slicing this run's S positions out of `present`.
 * The engine fetches those (`new.*`) instead of the whole cache: onnxruntime-node copies every
 * output it returns, so fetching `present.*` costs a copy of the whole cache per token.
 */
function newPositionsRange(ops: Ops, embeds: string): { newFrom: string; newTo: string } {
  const { g } = ops;
  const [s] = g.node('Shape', '/model/new_positions/Shape', [embeds], { start: attr.i(1), end: attr.i(2) }); // [S]
  const [total64] = g.node('Cast', '/model/new_positions/Cast', [DECODER_IO.totalSequenceLength], { to: attr.i(DataType.INT64) });
  const [newTo] = g.node('Reshape', '/model/new_positions/Reshape', [total64!, g.int64s([1])]); // [P + S]
  const [newFrom] = g.node('Sub', '/model/new_positions/Sub', [newTo!, s!]); // [P]
  return { newFrom: newFrom!, newTo: newTo! };
}

/** The residual stream between blocks: the sum so far and the block output not yet added to it. */
interface Stream {
  readonly residual: string;
  readonly pending: string | undefined;
}

/** One decoder layer: norm, attention, norm, MLP; each block's output is left pending for the next norm to add. */
async function makeLayer(
  ops: Ops,
  config: LlavaConfig,
  i: number,
  stream: Stream,
  shared: SharedInputs,
  format: LinearFormat,
): Promise<Stream> {
  const t = config.text;
  const p = `${TEXT}.layers.${i}`;
  const node = `/model/layers.${i}`;
  const [x, residual] = await rmsNorm(ops, `${node}/input_layernorm`, `${p}.input_layernorm.weight`, stream, t.hiddenSize, t.rmsNormEps);
  const attn = await makeAttention(ops, config, i, x, shared, format);
  const [x2, residual2] = await rmsNorm(
    ops,
    `${node}/post_attention_layernorm`,
    `${p}.post_attention_layernorm.weight`,
    { residual, pending: attn },
    t.hiddenSize,
    t.rmsNormEps,
  );
  return { residual: residual2, pending: await makeMlp(ops, config, i, x2, format) };
}

/**
 *   q, k, v = x Wq, x Wk, x Wv
 *   a, present = GroupQueryAttention(q, k, v, past; rotary on q and k at P..P+S-1)
 *   -> a Wo
 */
async function makeAttention(
  ops: Ops,
  config: LlavaConfig,
  i: number,
  x: string,
  shared: SharedInputs,
  format: LinearFormat,
): Promise<string> {
  const { g } = ops;
  const t = config.text;
  const h = t.hiddenSize;
  const p = `${TEXT}.layers.${i}.self_attn`;
  const node = `/model/layers.${i}/attn`;
  const kvDims = [1, t.numKvHeads, 'past_sequence_length', t.headDim];
  const presentDims = [1, t.numKvHeads, 'total_sequence_length', t.headDim];
  const kvType = shared.kvType;
  g.input(DECODER_IO.pastKey(i), kvType, kvDims);
  g.input(DECODER_IO.pastValue(i), kvType, kvDims);
  // attention runs in the cache's type: cast in (and its output back) when that differs from the layers'
  const toKv = (name: string, y: string): string =>
    kvType === ops.floatType ? y : g.node('Cast', `${node}/${name}/Cast`, [y], { to: attr.i(kvType) })[0]!;
  const q = toKv(
    'q',
    await ops.makeLinear(`${node}/q_proj`, `${p}.q_proj`, x, h, t.numHeads * t.headDim, { bias: t.attentionBias, format }),
  );
  const k = toKv(
    'k',
    await ops.makeLinear(`${node}/k_proj`, `${p}.k_proj`, x, h, t.numKvHeads * t.headDim, { bias: t.attentionBias, format }),
  );
  const v = toKv(
    'v',
    await ops.makeLinear(`${node}/v_proj`, `${p}.v_proj`, x, h, t.numKvHeads * t.headDim, { bias: t.attentionBias, format }),
  );
  const [attn] = g.node(
    'GroupQueryAttention',
    `${node}/GroupQueryAttention`,
    [q, k, v, DECODER_IO.pastKey(i), DECODER_IO.pastValue(i), shared.seqlensK, shared.total, shared.cosCache, shared.sinCache],
    {
      num_heads: attr.i(t.numHeads),
      kv_num_heads: attr.i(t.numKvHeads),
      do_rotary: attr.i(1),
      rotary_interleaved: attr.i(0), // rotate_half, as HF's LlamaRotaryEmbedding
    },
    { domain: MS_DOMAIN, outputs: [`${node}/GroupQueryAttention/output_0`, DECODER_IO.presentKey(i), DECODER_IO.presentValue(i)] },
  );
  g.output(DECODER_IO.presentKey(i), kvType, presentDims);
  g.output(DECODER_IO.presentValue(i), kvType, presentDims);
  for (const [present, out] of [
    [DECODER_IO.presentKey(i), DECODER_IO.newKey(i)],
    [DECODER_IO.presentValue(i), DECODER_IO.newValue(i)],
  ] as const) {
    g.node('Slice', `${node}/${out}/Slice`, [present, shared.newFrom, shared.newTo, g.int64s([2])], {}, { outputs: [out] });
    g.output(out, kvType, [1, t.numKvHeads, 'sequence_length', t.headDim]);
  }
  const a = kvType === ops.floatType ? attn! : g.node('Cast', `${node}/output/Cast`, [attn!], { to: attr.i(ops.floatType) })[0]!;
  return ops.makeLinear(`${node}/o_proj`, `${p}.o_proj`, a, t.numHeads * t.headDim, h, { bias: false, format });
}

/** (silu(x Wgate) * x Wup) Wdown */
async function makeMlp(ops: Ops, config: LlavaConfig, i: number, x: string, format: LinearFormat): Promise<string> {
  const { g } = ops;
  const t = config.text;
  const p = `${TEXT}.layers.${i}.mlp`;
  const node = `/model/layers.${i}/mlp`;
  const gate = await ops.makeLinear(`${node}/gate_proj`, `${p}.gate_proj`, x, t.hiddenSize, t.intermediateSize, { bias: false, format });
  const up = await ops.makeLinear(`${node}/up_proj`, `${p}.up_proj`, x, t.hiddenSize, t.intermediateSize, { bias: false, format });
  const [sig] = g.node('Sigmoid', `${node}/act/Sigmoid`, [gate]);
  const [silu] = g.node('Mul', `${node}/act/Mul`, [gate, sig!]);
  const [prod] = g.node('Mul', `${node}/Mul`, [silu!, up]);
  return ops.makeLinear(`${node}/down_proj`, `${p}.down_proj`, prod!, t.intermediateSize, t.hiddenSize, { bias: false, format });
}

/**
 * RMSNorm, with the pending block output first added into the residual when there is one
 * (SkipSimplifiedLayerNormalization returns both the normalised value and the new residual).
 * Returns [normalised, residual].
 */
async function rmsNorm(
  ops: Ops,
  node: string,
  weight: string,
  { residual, pending }: Stream,
  width: number,
  eps: number,
): Promise<[string, string]> {
  const { g } = ops;
  const gamma = await ops.tensor(weight, [width]);
  if (pending === undefined) {
    const [y] = g.node('SimplifiedLayerNormalization', `${node}/SimplifiedLayerNorm`, [residual, gamma], {
      axis: attr.i(-1),
      epsilon: attr.f(eps),
    });
    return [y!, residual];
  }
  const name = `${node}/SkipSimplifiedLayerNorm`;
  const [y, , , sum] = g.node(
    'SkipSimplifiedLayerNormalization',
    name,
    [pending, residual, gamma],
    { epsilon: attr.f(eps) },
    {
      domain: MS_DOMAIN,
      outputs: [`${name}/output_0`, '', '', `${name}/output_3`],
    },
  );
  return [y!, sum!];
}

/** cos / sin of position * theta^(-2i / d) for i < d / 2: (max_positions, d / 2) each. */
export function rotaryCaches(maxPositions: number, headDim: number, theta: number): [Float32Array, Float32Array] {
  const half = headDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let pos = 0; pos < maxPositions; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos / theta ** ((2 * i) / headDim);
      cos[pos * half + i] = Math.cos(angle);
      sin[pos * half + i] = Math.sin(angle);
    }
  }
  return [cos, sin];
}
