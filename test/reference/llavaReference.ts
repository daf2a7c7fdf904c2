/**
 * The Hugging Face forward passes the builder's graphs must reproduce, restated from
 * transformers' modeling code in float64 with plain loops: CLIPVisionModel (hidden_states, and
 * the q / k projections PruMerge hooks), LlavaMultiModalProjector, LlamaForCausalLM. Shares no
 * code with src/builder. Weights come in by hub name as float32 arrays.
 */

export type Weights = (name: string) => Float32Array;

export interface VisionRef {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu' | 'gelu_pytorch_tanh';
}

export interface TextRef {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Qwen2: q_proj, k_proj and v_proj have biases. */
  attentionBias?: boolean;
}

type Mat = Float64Array<ArrayBufferLike>[]; // rows

const V = 'vision_tower.vision_model';
const T = 'language_model.model';

/** y = x W^T + b, W (out, in) as stored. */
function linear(x: Mat, w: Float32Array, b: Float32Array | undefined, out: number): Mat {
  const inF = x[0]!.length;
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += row[i]! * w[o * inF + i]!;
      y[o] = s;
    }
    return y;
  });
}

function layerNorm(x: Mat, g: Float32Array, b: Float32Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    const mean = row.reduce((s, v) => s + v, 0) / n;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i]! + b[i]!);
  });
}

function rmsNorm(x: Mat, g: Float32Array, eps: number): Mat {
  return x.map((row) => {
    const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
    return row.map((v, i) => (v / Math.sqrt(ms + eps)) * g[i]!);
  });
}

/** erf: its Taylor series below 2.5, the continued fraction of erfc above (error < 1e-12). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc continued fraction (Lentz), converges fast for x >= 2.5
    let f = ax;
    for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
    r = 1 - Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * f);
  }
  return x < 0 ? -r : r;
}

function activation(x: number, act: 'quick_gelu' | 'gelu' | 'gelu_pytorch_tanh' | 'silu'): number {
  if (act === 'quick_gelu') return x / (1 + Math.exp(-1.702 * x));
  if (act === 'gelu_pytorch_tanh') return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  if (act === 'silu') return x / (1 + Math.exp(-x));
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** Softmax attention of `heads` heads; k / v heads shared by groups (GQA); optional causal mask. */
function attention(q: Mat, k: Mat, v: Mat, heads: number, kvHeads: number, headDim: number, causalOffset?: number): Mat {
  const scale = 1 / Math.sqrt(headDim);
  const group = heads / kvHeads;
  return q.map((qRow, i) => {
    const out = new Float64Array(heads * headDim);
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const visible = causalOffset === undefined ? k.length : causalOffset + i + 1;
      const scores = new Float64Array(visible);
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += qRow[h * headDim + d]! * k[j]![kh * headDim + d]!;
        scores[j] = s * scale;
        max = Math.max(max, scores[j]!);
      }
      let z = 0;
      for (let j = 0; j < visible; j++) {
        scores[j] = Math.exp(scores[j]! - max);
        z += scores[j]!;
      }
      for (let j = 0; j < visible; j++) {
        for (let d = 0; d < headDim; d++) out[h * headDim + d]! += (scores[j]! / z) * v[j]![kh * headDim + d]!;
      }
    }
    return out;
  });
}

const add = (a: Mat, b: Mat): Mat => a.map((row, i) => row.map((v, j) => v + b[i]![j]!));

export interface VisionResult {
  /** hidden_states[0 .. numLayers]: embeddings after pre_layrnorm, then each layer's output. */
  hiddenStates: Mat[];
  /** Per layer, q_proj and k_proj of layer_norm1(its input), bias included (before any scaling). */
  q: Mat[];
  k: Mat[];
}

/** CLIPVisionModel(pixel_values (3, S, S)), output_hidden_states=True. */
export function clipVision(c: VisionRef, w: Weights, pixels: Float32Array): VisionResult {
  const grid = c.imageSize / c.patchSize;
  const C = c.hiddenSize;
  const patchW = w(`${V}.embeddings.patch_embedding.weight`);
  const rows: Mat = [Float64Array.from(w(`${V}.embeddings.class_embedding`))];
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const e = new Float64Array(C);
      for (let o = 0; o < C; o++) {
        let s = 0;
        for (let ch = 0; ch < 3; ch++) {
          for (let ky = 0; ky < c.patchSize; ky++) {
            for (let kx = 0; kx < c.patchSize; kx++) {
              const px = pixels[(ch * c.imageSize + gy * c.patchSize + ky) * c.imageSize + gx * c.patchSize + kx]!;
              s += px * patchW[((o * 3 + ch) * c.patchSize + ky) * c.patchSize + kx]!;
            }
          }
        }
        e[o] = s;
      }
      rows.push(e);
    }
  }
  const pos = w(`${V}.embeddings.position_embedding.weight`);
  let h: Mat = rows.map((row, t) => row.map((v, i) => v + pos[t * C + i]!));
  h = layerNorm(h, w(`${V}.pre_layrnorm.weight`), w(`${V}.pre_layrnorm.bias`), c.layerNormEps);
  return encoder(c, w, h);
}

/**
 * SiglipVisionModel(pixel_values (3, S, S)), output_hidden_states=True: the conv (with bias) over
 * floor(S / P)^2 patches, plus position embeddings; no CLS, no pre-layernorm.
 */
export function siglipVision(c: VisionRef, w: Weights, pixels: Float32Array): VisionResult {
  const grid = Math.floor(c.imageSize / c.patchSize);
  const C = c.hiddenSize;
  const patchW = w(`${V}.embeddings.patch_embedding.weight`);
  const patchB = w(`${V}.embeddings.patch_embedding.bias`);
  const pos = w(`${V}.embeddings.position_embedding.weight`);
  const rows: Mat = [];
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const e = new Float64Array(C);
      for (let o = 0; o < C; o++) {
        let s = patchB[o]!;
        for (let ch = 0; ch < 3; ch++)
          for (let ky = 0; ky < c.patchSize; ky++)
            for (let kx = 0; kx < c.patchSize; kx++)
              s +=
                pixels[(ch * c.imageSize + gy * c.patchSize + ky) * c.imageSize + gx * c.patchSize + kx]! *
                patchW[((o * 3 + ch) * c.patchSize + ky) * c.patchSize + kx]!;
        e[o] = s + pos[(gy * grid + gx) * C + o]!;
      }
      rows.push(e);
    }
  }
  return encoder(c, w, rows);
}

/**
 * The attention each token receives in one layer: softmax(q k^T / sqrt(d)) per head, averaged
 * over heads and over every query (the CLS-free score docs/prumerge.md defines).
 */
export function receivedAttention(q: Mat, k: Mat, heads: number): Float64Array {
  const n = q.length;
  const d = q[0]!.length / heads;
  const out = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const s = new Float64Array(n);
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += q[i]![h * d + x]! * k[j]![h * d + x]!;
        s[j] = dot / Math.sqrt(d);
        max = Math.max(max, s[j]!);
      }
      let z = 0;
      for (let j = 0; j < n; j++) z += s[j] = Math.exp(s[j]! - max);
      for (let j = 0; j < n; j++) out[j]! += s[j]! / z / (heads * n);
    }
  }
  return out;
}

/** The ViT encoder layers both towers share, from the embeddings `h`. */
function encoder(c: VisionRef, w: Weights, h: Mat): VisionResult {
  const C = c.hiddenSize;
  const result: VisionResult = { hiddenStates: [h], q: [], k: [] };
  const headDim = C / c.numHeads;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${V}.encoder.layers.${l}`;
    const x = layerNorm(h, w(`${p}.layer_norm1.weight`), w(`${p}.layer_norm1.bias`), c.layerNormEps);
    const q = linear(x, w(`${p}.self_attn.q_proj.weight`), w(`${p}.self_attn.q_proj.bias`), C);
    const k = linear(x, w(`${p}.self_attn.k_proj.weight`), w(`${p}.self_attn.k_proj.bias`), C);
    const vv = linear(x, w(`${p}.self_attn.v_proj.weight`), w(`${p}.self_attn.v_proj.bias`), C);
    result.q.push(q);
    result.k.push(k);
    const a = attention(q, k, vv, c.numHeads, c.numHeads, headDim);
    h = add(h, linear(a, w(`${p}.self_attn.out_proj.weight`), w(`${p}.self_attn.out_proj.bias`), C));
    const x2 = layerNorm(h, w(`${p}.layer_norm2.weight`), w(`${p}.layer_norm2.bias`), c.layerNormEps);
    const up = linear(x2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`), c.intermediateSize).map((r) =>
      r.map((v) => activation(v, c.hiddenAct)),
    );
    h = add(h, linear(up, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`), C));
    result.hiddenStates.push(h);
  }
  return result;
}

/** LlavaMultiModalProjector: linear_1 -> act -> linear_2. */
export function projector(w: Weights, features: Mat, textHidden: number, act: 'gelu' | 'quick_gelu'): Mat {
  const p = 'multi_modal_projector';
  const h = linear(features, w(`${p}.linear_1.weight`), w(`${p}.linear_1.bias`), textHidden).map((r) => r.map((v) => activation(v, act)));
  return linear(h, w(`${p}.linear_2.weight`), w(`${p}.linear_2.bias`), textHidden);
}

/** Rotary embedding on one (heads * headDim) row at `position`, rotate_half convention. */
function rope(row: Float64Array, heads: number, headDim: number, position: number, theta: number): Float64Array {
  const out = new Float64Array(row.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const freq = 1 / theta ** ((2 * i) / headDim);
      const angle = position * freq;
      const a = row[h * headDim + i]!;
      const b = row[h * headDim + i + half]!;
      out[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * headDim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

/**
 * LlamaForCausalLM on input embeddings (positions 0..S-1): the logits of every position, or of
 * the last one only.
 */
export function llamaLogits(c: TextRef, w: Weights, embeds: Mat, lastOnly = false): Mat {
  let h: Mat = embeds.map((r) => Float64Array.from(r));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${T}.layers.${l}`;
    const x = rmsNorm(h, w(`${p}.input_layernorm.weight`), c.rmsNormEps);
    const bias = (name: string): Float32Array | undefined => (c.attentionBias ? w(`${p}.self_attn.${name}.bias`) : undefined);
    const q = linear(x, w(`${p}.self_attn.q_proj.weight`), bias('q_proj'), c.numHeads * c.headDim).map((r, pos) =>
      rope(r, c.numHeads, c.headDim, pos, c.ropeTheta),
    );
    const k = linear(x, w(`${p}.self_attn.k_proj.weight`), bias('k_proj'), c.numKvHeads * c.headDim).map((r, pos) =>
      rope(r, c.numKvHeads, c.headDim, pos, c.ropeTheta),
    );
    const v = linear(x, w(`${p}.self_attn.v_proj.weight`), bias('v_proj'), c.numKvHeads * c.headDim);
    const a = attention(q, k, v, c.numHeads, c.numKvHeads, c.headDim, 0);
    h = add(h, linear(a, w(`${p}.self_attn.o_proj.weight`), undefined, c.hiddenSize));
    const x2 = rmsNorm(h, w(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
    const gate = linear(x2, w(`${p}.mlp.gate_proj.weight`), undefined, c.intermediateSize);
    const up = linear(x2, w(`${p}.mlp.up_proj.weight`), undefined, c.intermediateSize);
    const m = gate.map((r, i) => r.map((g, j) => activation(g, 'silu') * up[i]![j]!));
    h = add(h, linear(m, w(`${p}.mlp.down_proj.weight`), undefined, c.hiddenSize));
  }
  h = rmsNorm(lastOnly ? h.slice(-1) : h, w(`${T}.norm.weight`), c.rmsNormEps);
  const head = c.tieWordEmbeddings ? w(`${T}.embed_tokens.weight`) : w('language_model.lm_head.weight');
  return linear(h, head, undefined, c.vocabSize);
}

/** Rows of the token embedding table. */
export function embedTokens(c: TextRef, w: Weights, ids: number[]): Mat {
  const table = w(`${T}.embed_tokens.weight`);
  return ids.map((id) => Float64Array.from(table.subarray(id * c.hiddenSize, (id + 1) * c.hiddenSize)));
}
