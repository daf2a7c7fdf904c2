/**
 * VisPruner (arXiv 2412.01818): half the budget to the patches the tower attends to most, the rest
 * to what its duplicate-removal loop leaves of the others, on the vision features the projector
 * reads. docs/reductions.md states the definition and its source.
 */
import type { Selected } from './diversity';
import { cosines, descending, unitRows } from './unitRows';

/** Duplicates dropped per round, at most (the official code's). */
const DROP_PER_ROUND = 8;

/** `features` (n, d); `score` the attention each patch gets (CLS row, or received), n values. */
export function vispruner(features: Float32Array, n: number, d: number, score: ArrayLike<number>, budget: number): Selected {
  const all = descending(score);
  if (budget >= n) return { kept: Int32Array.from(all).sort(), order: Int32Array.from(all) };
  const important = all.slice(0, Math.floor(budget * 0.5));
  const wanted = budget - important.length;
  // every pair's cosine once: the rounds below look them up
  const s = cosines(unitRows(features, n, d), n, d);
  let rest = all.slice(important.length);
  while (rest.length > wanted) {
    const surplus = rest.length - wanted;
    const a = rest.filter((_, i) => i % 2 === 0);
    const b = rest.filter((_, i) => i % 2 === 1);
    // each of A by its closest match in B: the most duplicated go first
    const similarity = new Map(a.map((p) => [p, Math.max(...b.map((q) => s[p * n + q]!))]));
    const byScore = [...a].sort((x, y) => similarity.get(y)! - similarity.get(x)! || x - y);
    const dropped = new Set(byScore.slice(0, Math.min(DROP_PER_ROUND, surplus)));
    rest = [...byScore.filter((p) => !dropped.has(p)), ...b];
  }
  const order = [...important, ...rest];
  return { kept: Int32Array.from(order).sort(), order: Int32Array.from(order) };
}
