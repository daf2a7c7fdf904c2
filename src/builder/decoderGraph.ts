/**
 * decoder.onnx: the LLaMA-family language model with a KV cache, on input embeddings (the
 * engine splices the projected visual tokens into the text embeddings itself).
 *
 *   inputs_embeds (1, S, H)                      seqlens_k (1) int32 = P + S - 1
 *   past_key_values.{i}.key/value (1, kv, P, d)  total_sequence_length () int32 = P + S
 *     layer i:  x = RMSNorm(h)  (Skip form: adds the previous block's output into the residual)
 *               q, k, v = x Wq, x Wk, x Wv
 *               a, present = GroupQueryAttention(q, k, v, past; rotary on q and k at P..P+S-1)
 *               h += a Wo;  x = RMSNorm(h);  h += (silu(x Wgate) * x Wup) Wdown
 *     RMSNorm(h)[last position] -> lm_head      -> logits (1, 1, V)
 *                                                -> present.{i}.key/value (1, kv, P + S, d)
 *
 * Positions follow from the cache length, so a prompt can be filled in one run or in chunks,
 * and a conversation goes on from its cache. Only the last position's logits are computed: the
 * vocabulary projection of every prompt position would cost as much as a second forward pass.
 */
import { DECODER_IO } from '../pipeline/graphNames';
import { LlavaConfig } from './llavaConfig';
import { attr, DataType, MS_DOMAIN } from './onnxGraph';
import { LinearFormat, Ops } from './ops';
import { LM_HEAD, TEXT } from './weights';

export async function makeDecoderGraph(ops: Ops, config: LlavaConfig, format: LinearFormat = 'float'): Promise<void> {
  const { g } = ops;
  const t = config.text;
  const h = t.hiddenSize;
  const embeds = ops.fromFloat32('/model/inputs_embeds', g.input(DECODER_IO.embeds, DataType.FLOAT, [1, 'sequence_length', h]));
  const [cos, sin] = rotaryCaches(t.maxPositionEmbeddings, t.headDim, t.ropeTheta);
  const shared: SharedInputs = {
    seqlensK: g.input(DECODER_IO.seqlensK, DataType.INT32, [1]),
    total: g.input(DECODER_IO.totalSequenceLength, DataType.INT32, []),
    cosCache: g.initializer('/model/rotary/cos_cache', ops.floats(cos), [t.maxPositionEmbeddings, t.headDim / 2], ops.floatType),
    sinCache: g.initializer('/model/rotary/sin_cache', ops.floats(sin), [t.maxPositionEmbeddings, t.headDim / 2], ops.floatType),
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
  g.input(DECODER_IO.pastKey(i), ops.floatType, kvDims);
  g.input(DECODER_IO.pastValue(i), ops.floatType, kvDims);
  const q = await ops.makeLinear(`${node}/q_proj`, `${p}.q_proj`, x, h, t.numHeads * t.headDim, { bias: false, format });
  const k = await ops.makeLinear(`${node}/k_proj`, `${p}.k_proj`, x, h, t.numKvHeads * t.headDim, { bias: false, format });
  const v = await ops.makeLinear(`${node}/v_proj`, `${p}.v_proj`, x, h, t.numKvHeads * t.headDim, { bias: false, format });
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
  g.output(DECODER_IO.presentKey(i), ops.floatType, presentDims);
  g.output(DECODER_IO.presentValue(i), ops.floatType, presentDims);
  return ops.makeLinear(`${node}/o_proj`, `${p}.o_proj`, attn!, t.numHeads * t.headDim, h, { bias: false, format });
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
