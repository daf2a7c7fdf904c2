/**
 * VisPruner (arXiv 2412.01818): half the budget to the patches the tower attends to most, the rest
 * to what its duplicate-removal loop leaves of the others, on the vision features the projector
 * reads. docs/reductions.md states the definition and its source.
 */
import { selected, type Selected } from './diversity';
import { descending, RowCosines } from './unitRows';

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
  const similarity = new Float64Array(n);
  let rest = all.slice(important.length);
  while (rest.length > wanted) {
    const surplus = rest.length - wanted;
    const a = rest.filter((_, i) => i % 2 === 0);
    const b = rest.filter((_, i) => i % 2 === 1);
    // each of A by its closest match in B (scanned in patch order, so each similarity row is read
    // forwards: the maximum does not depend on order): the most duplicated go first
    const scan = Int32Array.from(b).sort();
    for (const p of a) similarity[p] = closest(p, scan);
    const byScore = a.sort((x, y) => similarity[y]! - similarity[x]! || x - y);
    rest = [...byScore.slice(Math.min(DROP_PER_ROUND, surplus)), ...b];
  }
  return selected([...important, ...rest]);
}

/**
 * The highest cosine of patch p to any of `among`, as float64 gives it: every pair in float32 by
 * the SIMD kernel, then the few near the best again in float64.
 */
function closestIn(features: Float32Array, n: number, d: number): (p: number, among: Int32Array) => number {
  const cosines = new RowCosines(features, n, d);
  const rough = cosines.all();
  const norm = Float64Array.from({ length: n }, (_, i) => Math.sqrt(cosines.dot64(i, i)));
  const exact = new Float64Array(n * n).fill(NaN);
  const cos = (p: number, q: number): number => {
    const key = p < q ? p * n + q : q * n + p;
    if (Number.isNaN(exact[key]!)) {
      const length = norm[p]! * norm[q]!;
      exact[key] = length > 0 ? cosines.dot64(p, q) / length : 0;
    }
    return exact[key]!;
  };
  const near = new Int32Array(n);
  return (p, among) => {
    // one pass: the running best, and every pair within SLACK of it when seen (a superset of those near the final best)
    const row = p * n;
    let top = -Infinity;
    let count = 0;
    for (let k = 0; k < among.length; k++) {
      const v = rough[row + among[k]!]!;
      if (v >= top - SLACK) {
        if (v > top) top = v;
        near[count++] = among[k]!;
      }
    }
    let best = -Infinity;
    for (let k = 0; k < count; k++) {
      const q = near[k]!;
      if (rough[row + q]! >= top - SLACK) best = Math.max(best, cos(p, q));
    }
    return best;
  };
}
