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
import { LlavaConfig } from './llavaConfig';
import { attr, DataType, MS_DOMAIN } from './onnxGraph';
import { LinearFormat, Ops } from './ops';
import { LM_HEAD, TEXT } from './weights';

export const DECODER_INPUTS = {
  embeds: 'inputs_embeds',
  seqlensK: 'seqlens_k',
  totalSequenceLength: 'total_sequence_length',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
} as const;

export const DECODER_OUTPUTS = {
  logits: 'logits',
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
} as const;

export async function makeDecoderGraph(ops: Ops, config: LlavaConfig, format: LinearFormat = 'float'): Promise<void> {
  const { g } = ops;
  const t = config.text;
  const h = t.hiddenSize;
  const kvDims = [1, t.numKvHeads, 'past_sequence_length', t.headDim];
  const presentDims = [1, t.numKvHeads, 'total_sequence_length', t.headDim];

  const embeds = ops.fromFloat32('/model/inputs_embeds', g.input(DECODER_INPUTS.embeds, DataType.FLOAT, [1, 'sequence_length', h]));
  const seqlensK = g.input(DECODER_INPUTS.seqlensK, DataType.INT32, [1]);
  const total = g.input(DECODER_INPUTS.totalSequenceLength, DataType.INT32, []);
  const [cos, sin] = rotaryCaches(t.maxPositionEmbeddings, t.headDim, t.ropeTheta);
  const cosCache = g.initializer('/model/rotary/cos_cache', ops.floats(cos), [t.maxPositionEmbeddings, t.headDim / 2], ops.floatType);
  const sinCache = g.initializer('/model/rotary/sin_cache', ops.floats(sin), [t.maxPositionEmbeddings, t.headDim / 2], ops.floatType);

  // residual stream: `residual` holds h; `pending` is the block output not yet added to it
  let residual: string = embeds;
  let pending: string | undefined;
  for (let i = 0; i < t.numLayers; i++) {
    const p = `${TEXT}.layers.${i}`;
    const node = `/model/layers.${i}`;
    g.input(DECODER_INPUTS.pastKey(i), ops.floatType, kvDims);
    g.input(DECODER_INPUTS.pastValue(i), ops.floatType, kvDims);

    let x: string;
    [x, residual] = await rmsNorm(ops, `${node}/input_layernorm`, `${p}.input_layernorm.weight`, residual, pending, h, t.rmsNormEps);
    const q = await ops.makeLinear(`${node}/attn/q_proj`, `${p}.self_attn.q_proj`, x, h, t.numHeads * t.headDim, { bias: false, format });
    const k = await ops.makeLinear(`${node}/attn/k_proj`, `${p}.self_attn.k_proj`, x, h, t.numKvHeads * t.headDim, { bias: false, format });
    const v = await ops.makeLinear(`${node}/attn/v_proj`, `${p}.self_attn.v_proj`, x, h, t.numKvHeads * t.headDim, { bias: false, format });
    const [attn] = g.node(
      'GroupQueryAttention',
      `${node}/attn/GroupQueryAttention`,
      [q, k, v, DECODER_INPUTS.pastKey(i), DECODER_INPUTS.pastValue(i), seqlensK, total, cosCache, sinCache],
      {
        num_heads: attr.i(t.numHeads),
        kv_num_heads: attr.i(t.numKvHeads),
        do_rotary: attr.i(1),
        rotary_interleaved: attr.i(0), // rotate_half, as HF's LlamaRotaryEmbedding
      },
      { domain: MS_DOMAIN, outputs: [`${node}/attn/GroupQueryAttention/output_0`, DECODER_OUTPUTS.presentKey(i), DECODER_OUTPUTS.presentValue(i)] },
    );
    const o = await ops.makeLinear(`${node}/attn/o_proj`, `${p}.self_attn.o_proj`, attn!, t.numHeads * t.headDim, h, { bias: false, format });

    [x, residual] = await rmsNorm(ops, `${node}/post_attention_layernorm`, `${p}.post_attention_layernorm.weight`, residual, o, h, t.rmsNormEps);
    const gate = await ops.makeLinear(`${node}/mlp/gate_proj`, `${p}.mlp.gate_proj`, x, h, t.intermediateSize, { bias: false, format });
    const up = await ops.makeLinear(`${node}/mlp/up_proj`, `${p}.mlp.up_proj`, x, h, t.intermediateSize, { bias: false, format });
    const [sig] = g.node('Sigmoid', `${node}/mlp/act/Sigmoid`, [gate]);
    const [silu] = g.node('Mul', `${node}/mlp/act/Mul`, [gate, sig!]);
    const [prod] = g.node('Mul', `${node}/mlp/Mul`, [silu!, up]);
    pending = await ops.makeLinear(`${node}/mlp/down_proj`, `${p}.mlp.down_proj`, prod!, t.intermediateSize, h, { bias: false, format });
    g.output(DECODER_OUTPUTS.presentKey(i), ops.floatType, presentDims);
    g.output(DECODER_OUTPUTS.presentValue(i), ops.floatType, presentDims);
  }

  const [normed] = await rmsNorm(ops, '/model/norm', `${TEXT}.norm.weight`, residual, pending, h, t.rmsNormEps);
  const [lastPos] = g.node('Slice', '/model/last_position/Slice', [normed, g.int64s([-1]), g.int64s([2 ** 53]), g.int64s([1])]); // (1, 1, H)
  const headName = t.tieWordEmbeddings ? `${TEXT}.embed_tokens` : LM_HEAD.replace(/\.weight$/, '');
  const logits = await ops.makeLinear('/lm_head', headName, lastPos!, h, t.vocabSize, { bias: false, format });
  ops.output('/lm_head/output', logits, DECODER_OUTPUTS.logits, [1, 1, t.vocabSize]);
}

/**
 * RMSNorm, with the pending block output first added into the residual when there is one
 * (SkipSimplifiedLayerNormalization returns both the normalised value and the new residual).
 * Returns [normalised, residual].
 */
async function rmsNorm(ops: Ops, node: string, weight: string, residual: string, pending: string | undefined, width: number, eps: number): Promise<[string, string]> {
  const { g } = ops;
  const gamma = await ops.tensor(weight, [width]);
  if (pending === undefined) {
    const [y] = g.node('SimplifiedLayerNormalization', `${node}/SimplifiedLayerNorm`, [residual, gamma], { axis: attr.i(-1), epsilon: attr.f(eps) });
    return [y!, residual];
  }
  const name = `${node}/SkipSimplifiedLayerNorm`;
  const [y, , , sum] = g.node('SkipSimplifiedLayerNormalization', name, [pending, residual, gamma], { epsilon: attr.f(eps) }, {
    domain: MS_DOMAIN,
    outputs: [`${name}/output_0`, '', '', `${name}/output_3`],
  });
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
