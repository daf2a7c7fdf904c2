/**
 * VisPruner (arXiv 2412.01818): half the budget to the patches the tower attends to most, the rest
 * to what its duplicate-removal loop leaves of the others, on the vision features the projector
 * reads. docs/reductions.md states the definition and its source.
 */
import { selected, type Selected } from './diversity';
import { descending, dot, RowCosines, unitRows } from './unitRows';

/** Duplicates dropped per round, at most (the official code's). */
const DROP_PER_ROUND = 8;
/**
 * Pairs within this of a patch's best float32 cosine are measured again in float64: on real
 * features near-duplicates tie closer than float32 resolves, and one tie decided the other way
 * reorders every later round (docs/reductions.md). Well above float32's error on a cosine of unit
 * rows of a few thousand values (about 1e-6), well below the gaps between distinct patches.
 */
const SLACK = 1e-4;

/** `features` (n, d); `score` the attention each patch gets (CLS row, or received), n values. */
export function vispruner(features: Float32Array, n: number, d: number, score: ArrayLike<number>, budget: number): Selected {
  const all = descending(score);
  if (budget >= n) return selected(all);
  const important = all.slice(0, Math.floor(budget * 0.5));
  const wanted = budget - important.length;
  const closest = closestIn(features, n, d);
  let rest = all.slice(important.length);
  while (rest.length > wanted) {
    const surplus = rest.length - wanted;
    const a = rest.filter((_, i) => i % 2 === 0);
    const b = rest.filter((_, i) => i % 2 === 1);
    // each of A by its closest match in B: the most duplicated go first
    const similarity = new Map(a.map((p) => [p, closest(p, b)]));
    const byScore = [...a].sort((x, y) => similarity.get(y)! - similarity.get(x)! || x - y);
    const dropped = new Set(byScore.slice(0, Math.min(DROP_PER_ROUND, surplus)));
    rest = [...byScore.filter((p) => !dropped.has(p)), ...b];
  }
  return selected([...important, ...rest]);
}

/**
 * The highest cosine of patch p to any of `among`, as float64 gives it: every pair in float32 by
 * the SIMD kernel, then the few near the best again in float64.
 */
function closestIn(features: Float32Array, n: number, d: number): (p: number, among: readonly number[]) => number {
  const rough = new RowCosines(features, n, d).all();
  const u = unitRows(features, n, d);
  const exact = new Float64Array(n * n).fill(NaN);
  const cos = (p: number, q: number): number => {
    const key = p < q ? p * n + q : q * n + p;
    if (Number.isNaN(exact[key]!)) exact[key] = dot(u, p, u, q, d);
    return exact[key]!;
  };
  return (p, among) => {
    let top = -Infinity;
    for (const q of among) top = Math.max(top, rough[p * n + q]!);
    let best = -Infinity;
    for (const q of among) if (rough[p * n + q]! >= top - SLACK) best = Math.max(best, cos(p, q));
    return best;
  };
}
