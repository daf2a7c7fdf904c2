/**
 * A second, deliberately plain implementation of the reference code's semantics
 * (docs/prumerge.md), written as a line-by-line transcription of the authors'
 * token_prune_merge_advanced: float64, arrays of arrays, no blocking, no SIMD, full sorts.
 * Tests compare src/pipeline/reduce/prumerge.ts against it; it shares no code with it.
 */

export type Matrix = number[][];

export interface ReferenceResult {
  kept: number[];
  spatial: number[];
  clusters: number[][];
  attention: number[];
  outliers: number;
  features: Matrix; // kept rows then, when something was pruned, the remainder row
}

/** numpy.percentile(x, p) with the default linear interpolation, as its documentation states it. */
export function numpyPercentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = ((s.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/**
 * `valid` (LLaVA-NeXT's tiles): the patches unpadding keeps. The attention is computed over every
 * key as usual, then only the valid patches take part, as if they were the whole image; the
 * result's indices are patch indices again.
 */
export function referencePruMerge(
  hidden: Matrix,
  q: Matrix,
  k: Matrix,
  mode: 'prumerge' | 'prumerge+' | { topk: number },
  valid?: number[],
): ReferenceResult {
  const C = hidden[0]!.length;
  // attn = softmax(q @ k.T * C ** -0.5); cls_attn = attn[0, 1:]
  const logits = k.map((kj) => kj.reduce((s, v, c) => s + q[0]![c]! * v, 0) / Math.sqrt(C));
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const z = e.reduce((s, v) => s + v, 0);
  const fullAttn = e.slice(1).map((v) => v / z);
  if (!valid) return reduceSequence(hidden.slice(1), k.slice(1), fullAttn, mode, fullAttn);
  const r = reduceSequence(
    valid.map((i) => hidden[i + 1]!),
    valid.map((i) => k[i + 1]!),
    valid.map((i) => fullAttn[i]!),
    mode,
    fullAttn,
  );
  const back = (local: number[]): number[] => local.map((i) => valid[i]!);
  return { ...r, kept: back(r.kept), spatial: back(r.spatial), clusters: r.clusters.map(back) };
}

function reduceSequence(
  imageFeatures: Matrix,
  keyWoCls: Matrix,
  clsAttn: number[],
  mode: 'prumerge' | 'prumerge+' | { topk: number },
  fullAttn: number[],
): ReferenceResult {
  const C = imageFeatures[0]!.length;
  const N = imageFeatures.length;

  // outlier_dectection: IQR bound, ratio = n / N
  const q1 = numpyPercentile(clsAttn, 25);
  const q3 = numpyPercentile(clsAttn, 75);
  const upper = q3 + 1.5 * (q3 - q1);
  const outliers = clsAttn.filter((a) => a > upper).length;

  // torch.topk(cls_attn, left_tokens), sorted; ties to the lower index (our documented choice)
  const byAttention = clsAttn.map((a, i) => ({ a, i })).sort((x, y) => y.a - x.a || x.i - y.i);
  let left: number;
  if (typeof mode === 'object') left = Math.min(mode.topk, N);
  else left = Math.max(outliers, 1); // floor of one token where the reference would keep none
  const idx = byAttention.slice(0, left).map((t) => t.i);

  const spatial: number[] = [];
  if (mode === 'prumerge+') {
    const ratio = Math.max(outliers, 1) / N;
    const step = Math.trunc(1 / ratio);
    const stride = Math.max(Math.trunc(step / 3), 1);
    for (let c = Math.trunc(step / 6); c < N - 1; c += stride) {
      if (!idx.includes(c) && !spatial.includes(c)) spatial.push(c);
    }
    idx.push(...spatial);
  }

  // complement_idx, normalised keys without CLS
  const compl = [...Array(N).keys()].filter((j) => !idx.includes(j));
  const normalize = (v: number[]): number[] => {
    const norm = Math.max(Math.sqrt(v.reduce((s, x) => s + x * x, 0)), 1e-12);
    return v.map((x) => x / norm);
  };

  const clusters: number[][] = [];
  const features: Matrix = [];
  for (let i = 0; i < idx.length; i++) {
    // rest = kept before i, kept after i, then the non-topk tokens
    const rest = [...idx.slice(0, i), ...idx.slice(i + 1), ...compl];
    const center = normalize(keyWoCls[idx[i]!]!);
    const sims = rest.map((j) => ({
      j,
      s: normalize(keyWoCls[j]!).reduce((acc, v, c) => acc + v * center[c]!, 0),
    }));
    sims.sort((x, y) => y.s - x.s || x.j - y.j);
    const cluster = sims.slice(0, Math.min(32, rest.length)).map((t) => t.j);
    clusters.push(cluster);
    const updated = [...imageFeatures[idx[i]!]!];
    for (const j of cluster) for (let c = 0; c < C; c++) updated[c]! += clsAttn[j]! * imageFeatures[j]![c]!;
    features.push(updated);
  }
  if (compl.length > 0) {
    const extra = new Array<number>(C).fill(0);
    for (const j of compl) for (let c = 0; c < C; c++) extra[c]! += clsAttn[j]! * imageFeatures[j]![c]!;
    features.push(extra);
  }
  return { kept: idx, spatial, clusters, attention: fullAttn, outliers, features };
}

/**
 * Towers without CLS (docs/prumerge.md): `received` is each patch's score, computed apart
 * (test/reference/llavaReference.ts receivedAttention); the steps after it are the same.
 */
export function referencePruMergeReceived(
  hidden: Matrix,
  k: Matrix,
  received: number[],
  mode: 'prumerge' | 'prumerge+' | { topk: number },
  valid?: number[],
): ReferenceResult {
  if (!valid) return reduceSequence(hidden, k, received, mode, received);
  const r = reduceSequence(
    valid.map((i) => hidden[i]!),
    valid.map((i) => k[i]!),
    valid.map((i) => received[i]!),
    mode,
    received,
  );
  const back = (local: number[]): number[] => local.map((i) => valid[i]!);
  return { ...r, kept: back(r.kept), spatial: back(r.spatial), clusters: r.clusters.map(back) };
}
