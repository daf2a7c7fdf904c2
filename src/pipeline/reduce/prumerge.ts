/**
 * LLaVA-PruMerge and PruMerge+ (arXiv 2403.15388): N patch tokens -> M << N visual tokens.
 * docs/prumerge.md states the reference semantics this file follows number for number.
 *
 * Where the reference code is undefined, this file decides (and the tests pin it down):
 *  - no IQR outliers: the keep set is floored at one token (the highest score), and
 *    PruMerge+ sizes its spatial grid as if one outlier had been found;
 *  - PruMerge+ stride int(step / 3) = 0 (more than a third of the patches are outliers): stride 1;
 *  - fewer than 33 patches: each kept token merges all N - 1 others;
 *  - grids other than 24 x 24: the supplement's range ends at N - 1 (575 for N = 576);
 *  - the keep count is the outlier count n itself; the reference's int(N * (n / N)) equals n for
 *    N = 576 but loses a token to rounding for some other N (49, 196, 729, ...);
 *  - ties in score or in key similarity go to the lower patch index;
 *  - the remainder token (sum of the pruned tokens) is appended only when a token was pruned.
 *
 * The tiled layouts' tiles are reduced over their VALID patches V only (those unpadding keeps): the CLS
 * attention is the softmax over all N + 1 keys restricted to V (not renormalised), and every step
 * after it runs on the sequence V as if it were the whole image (docs/llava-next.md).
 *
 * Towers without a CLS token (SigLIP) score each patch by the attention it receives instead,
 * computed in the vision graph; every step after the score is the same (docs/prumerge.md).
 */
import { ReduceMode } from '../../shared/reduceMode';
import { COSINE_BLOCK, MergeWorkspace } from './mergeKernels';
import { checkTapsShape, ClsTaps, rowsAt, TapsError, TowerTaps } from './visionTaps';

/** How many neighbours each kept token absorbs (the reference's k = 32). */
export const MERGE_NEIGHBOURS = 32;

export interface OutlierStats {
  /** 25th and 75th percentiles of the patch scores (numpy's linear interpolation). */
  readonly q1: number;
  readonly q3: number;
  /** q3 + 1.5 (q3 - q1): attention strictly above it is an outlier. */
  readonly bound: number;
  /** Number of outliers n; PruMerge keeps max(n, 1) tokens. */
  readonly count: number;
}

export interface Reduction {
  readonly mode: ReduceMode;
  /** N: patch tokens before the reduction (|V| when restricted to valid patches). */
  readonly patches: number;
  /** C: feature width. */
  readonly width: number;
  /** M: output rows = kept.length, plus one when `remainder`. */
  readonly rows: number;
  /** (rows, width) the reduced features, in the order they reach the projector. */
  readonly features: Float32Array;
  /** Patch indices (0..N-1, raster order on the grid) of the output rows, in output order. */
  readonly kept: Int32Array;
  /** The kept patches added by PruMerge+'s spatial supplement, in output order. */
  readonly spatial: Int32Array;
  /** For each kept token, the patch indices merged into it, most similar key first. */
  readonly clusters: readonly Int32Array[];
  /**
   * (grid patches) each patch's score: the softmax attention of the CLS query over CLS + patches,
   * CLS entry dropped (sums to < 1); or, for towers without CLS, the attention it receives.
   */
  readonly attention: Float32Array;
  readonly score: 'cls' | 'received';
  readonly outliers: OutlierStats;
  /** Whether the last row is the attention-weighted sum of all pruned tokens. */
  readonly remainder: boolean;
  /** The greedy selections (selectTokens.ts): the kept patches in the order they were chosen. */
  readonly order?: Int32Array;
  /** CDPruner with a question: (grid patches) each patch's relevance to it, 0..1 over the image's crops; 0 outside the valid patches. */
  readonly relevance?: Float32Array;
}

/**
 * Reduces the vision tower's patch tokens as `mode` says, over the patches `valid` (increasing
 * indices; default all of them). Pure: the taps are not modified.
 */
export function reduceVisualTokens(taps: TowerTaps, mode: ReduceMode, valid?: Int32Array): Reduction {
  checkTapsShape(taps);
  const all = patchesOf(taps);
  const attention32 = Float32Array.from(all.attention);
  const score = 'received' in taps ? 'received' : 'cls';
  if (valid?.length === 0) throw new TapsError('no valid patch to reduce');
  if (valid && valid.length === all.n) valid = undefined; // every patch: the image itself
  const reduction = reduceOver(valid ? restrict(all, valid) : all, mode);
  if (!valid) return { ...reduction, attention: attention32, score };
  const toPatch = (local: Int32Array): Int32Array => local.map((i) => valid[i]!);
  return {
    ...reduction,
    kept: toPatch(reduction.kept),
    spatial: toPatch(reduction.spatial),
    clusters: reduction.clusters.map(toPatch),
    attention: attention32,
    score,
  };
}

/** The patches a reduction works on: their features, keys and scores, row i for patch i. */
interface Patches {
  readonly n: number;
  readonly width: number;
  /** (n, width) */
  readonly hidden: Float32Array;
  readonly k: Float32Array;
  readonly attention: Float64Array;
}

function patchesOf(taps: TowerTaps): Patches {
  const { width } = taps;
  if (!('received' in taps)) {
    return { n: taps.tokens - 1, width, hidden: taps.hidden.subarray(width), k: taps.k.subarray(width), attention: clsAttention(taps) };
  }
  const attention = Float64Array.from(taps.received);
  attention.forEach((a, j) => {
    if (!Number.isFinite(a))
      throw new TapsError(`the attention patch ${j} receives is not finite: the vision tower's output holds NaN or Infinity`);
  });
  return { n: taps.tokens, width, hidden: taps.hidden, k: taps.k, attention };
}

/** The patches `valid`, in that order. */
function restrict(all: Patches, valid: Int32Array): Patches {
  const { width } = all;
  return {
    n: valid.length,
    width,
    hidden: rowsAt(all.hidden, valid, width),
    k: rowsAt(all.k, valid, width),
    attention: pick(all.attention, valid),
  };
}

function pick(values: Float64Array, indices: Int32Array): Float64Array {
  return Float64Array.from(indices, (i) => values[i]!);
}

/** Steps 2 to 6 on the patches, given their scores; indices are rows of `patches`. */
function reduceOver(patches: Patches, mode: ReduceMode): Omit<Reduction, 'attention' | 'score'> {
  const { n, attention } = patches;
  const outliers = iqrOutliers(attention);
  if (mode.kind === 'none') {
    const kept = new Int32Array(n).map((_, i) => i);
    return {
      mode,
      patches: n,
      width: patches.width,
      rows: n,
      features: patches.hidden.slice(),
      kept,
      spatial: new Int32Array(0),
      clusters: Array.from({ length: n }, () => new Int32Array(0)),
      outliers,
      remainder: false,
    };
  }

  if (mode.kind !== 'topk' && mode.kind !== 'prumerge' && mode.kind !== 'prumerge+')
    throw new TapsError(`${mode.kind} chooses patches without merging: selectVisualTokens reads it`);
  const keepCount = mode.kind === 'topk' ? Math.min(mode.k, n) : Math.max(outliers.count, 1);
  let kept: Int32Array = topByAttention(attention, keepCount);
  let spatial: Int32Array = new Int32Array(0);
  if (mode.kind === 'prumerge+') {
    spatial = spatialSupplement(n, keepCount, kept);
    kept = concat(kept, spatial);
  }
  const { features, clusters, remainder } = merge(patches, kept);
  return {
    mode,
    patches: n,
    width: patches.width,
    rows: kept.length + (remainder ? 1 : 0),
    features,
    kept,
    spatial,
    clusters,
    outliers,
    remainder,
  };
}

// ---------------------------------------------------------------------------------------------
// Step 1: CLS attention a_j = softmax_j(Q[0] . K[j] / sqrt(C)) over j = 0..N, then a = a[1..N].

function clsAttention(taps: ClsTaps): Float64Array {
  const { tokens, width, q, k } = taps;
  const scale = 1 / Math.sqrt(width);
  const logits = new Float64Array(tokens); // (N + 1)
  let max = -Infinity;
  for (let j = 0; j < tokens; j++) {
    const l = dot(q, 0, k, j * width, width) * scale;
    if (!Number.isFinite(l)) {
      throw new TapsError(`CLS attention logit for token ${j} is not finite: q or k holds NaN or Infinity`);
    }
    logits[j] = l;
    if (l > max) max = l;
  }
  let sum = 0;
  for (let j = 0; j < tokens; j++) {
    logits[j] = Math.exp(logits[j]! - max);
    sum += logits[j]!;
  }
  for (let j = 0; j < tokens; j++) logits[j]! /= sum;
  return logits.subarray(1);
}

// ---------------------------------------------------------------------------------------------
// Step 2: adaptive count, the IQR outliers of the attention.

export function iqrOutliers(attention: ArrayLike<number>): OutlierStats {
  const sorted = Float64Array.from(attention).sort();
  const q1 = percentile(sorted, 0.25);
  const q3 = percentile(sorted, 0.75);
  const bound = q3 + 1.5 * (q3 - q1);
  let count = 0;
  for (let j = 0; j < attention.length; j++) if (attention[j]! > bound) count++;
  return { q1, q3, bound, count };
}

/** numpy.percentile's default 'linear' method, including its lerp written from either end. */
function percentile(sorted: Float64Array, q: number): number {
  const last = sorted.length - 1;
  const virtual = (last + 1) * q + (1 - q) - 1;
  const lo = Math.min(Math.floor(virtual), last);
  const hi = Math.min(lo + 1, last);
  const t = virtual - lo;
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

// ---------------------------------------------------------------------------------------------
// Step 3: the keep set, highest attention first (torch.topk, sorted).

function topByAttention(attention: Float64Array, count: number): Int32Array {
  const order = Int32Array.from({ length: attention.length }, (_, i) => i);
  order.sort((x, y) => attention[y]! - attention[x]! || x - y);
  return order.slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// Step 4 (PruMerge+): a regular grid of patches, appended in increasing order where not kept.
//   step = int(1 / ratio) = floor(N / n); candidates = range(int(step / 6), N - 1, int(step / 3)).

export function spatialSupplement(patches: number, outlierCount: number, kept: Int32Array): Int32Array {
  const step = Math.floor(patches / Math.max(outlierCount, 1));
  const stride = Math.max(Math.floor(step / 3), 1);
  const isKept = new Uint8Array(patches);
  for (const i of kept) isKept[i] = 1;
  const added: number[] = [];
  for (let c = Math.floor(step / 6); c < patches - 1; c += stride) {
    if (!isKept[c]) added.push(c);
  }
  return Int32Array.from(added);
}

// ---------------------------------------------------------------------------------------------
// Steps 5 and 6: each kept token absorbs its 32 most key-similar tokens (cosine over the full
// width, weights the raw attention a_j); one remainder token sums a_j X_j over the pruned.

interface Merged {
  features: Float32Array; // (rows, width)
  clusters: Int32Array[];
  remainder: boolean;
}

function merge(patches: Patches, kept: Int32Array): Merged {
  const { width, n, attention } = patches;
  const work = new MergeWorkspace(patches.k, patches.hidden, n, width);
  const neighbours = Math.min(MERGE_NEIGHBOURS, n - 1);
  const remainder = kept.length < n;
  const features = new Float32Array((kept.length + (remainder ? 1 : 0)) * width);
  const clusters: Int32Array[] = [];

  const top = new TopK(neighbours);
  const last = kept.length - 1;
  for (let b = 0; b < kept.length; b += COSINE_BLOCK) {
    // rows past the end repeat the last kept row; their results are not read
    const sims = work.compare(kept[b]!, kept[Math.min(b + 1, last)]!, kept[Math.min(b + 2, last)]!, kept[Math.min(b + 3, last)]!); // (COSINE_BLOCK, N)
    for (let r = 0; r < COSINE_BLOCK && b + r < kept.length; r++) {
      const i = kept[b + r]!;
      top.reset();
      const row = r * n;
      for (let j = 0; j < n; j++) if (j !== i) top.offer(sims[row + j]!, j);
      const cluster = top.indices();
      clusters.push(cluster);
      work.mergeInto(features, b + r, i, cluster, attention);
    }
  }

  if (remainder) {
    const isKept = new Uint8Array(n);
    for (const i of kept) isKept[i] = 1;
    const pruned: number[] = [];
    for (let j = 0; j < n; j++) if (!isKept[j]) pruned.push(j);
    work.mergeInto(features, kept.length, -1, pruned, attention);
  }
  return { features, clusters, remainder };
}

/** The k largest scores seen, ties to the earlier offer (offers come in increasing index). */
class TopK {
  private readonly scores: Float64Array;
  private readonly ids: Int32Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.scores = new Float64Array(k);
    this.ids = new Int32Array(k);
  }

  reset(): void {
    this.size = 0;
  }

  offer(score: number, id: number): void {
    const { k, scores, ids } = this;
    if (k === 0 || (this.size === k && !(score > scores[k - 1]!))) return;
    let p = this.size < k ? this.size++ : k - 1;
    while (p > 0 && score > scores[p - 1]!) {
      scores[p] = scores[p - 1]!;
      ids[p] = ids[p - 1]!;
      p--;
    }
    scores[p] = score;
    ids[p] = id;
  }

  indices(): Int32Array {
    return this.ids.slice(0, this.size);
  }
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, len: number): number {
  let s = 0;
  for (let c = 0; c < len; c++) s += a[ao + c]! * b[bo + c]!;
  return s;
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
