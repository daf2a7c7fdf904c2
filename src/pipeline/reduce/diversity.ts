/**
 * Selections by diversity of the projected rows (what the language model reads), without
 * attention: DivPrune (greedy max-min cosine distance) and CDPruner (a greedy determinantal point
 * process over cosine similarity weighted by relevance to the question). docs/reductions.md
 * states the definitions and the sources; none of them merges, the kept rows go in patch order.
 */
import { argmax, RowCosines, unitRows } from './unitRows';

export interface Selected {
  /** Patch rows kept, ascending. */
  readonly kept: Int32Array;
  /** The same, in the order they were chosen. */
  readonly order: Int32Array;
}

/** A selection from the order of choice. */
export function selected(order: readonly number[]): Selected {
  return { kept: Int32Array.from(order).sort(), order: Int32Array.from(order) };
}

/**
 * DivPrune: first the row whose nearest other row is farthest, then again and again the row whose
 * nearest chosen row is farthest (distance 1 - cosine; ties to the lower index).
 */
export function divprune(rows: Float32Array, n: number, d: number, budget: number): Selected {
  if (budget >= n) return selected(Array.from({ length: n }, (_, i) => i));
  const s = new RowCosines(rows, n, d).all();
  // the distance from each row to its nearest other row
  let first = 0;
  let best = -Infinity;
  for (let i = 0; i < n; i++) {
    let nearest = Infinity;
    for (let j = 0; j < n; j++) if (j !== i) nearest = Math.min(nearest, 1 - s[i * n + j]!);
    if (n === 1) nearest = 0;
    if (nearest > best) [best, first] = [nearest, i];
  }
  const order = [first];
  const toChosen = new Float64Array(n).fill(Infinity);
  const taken = new Uint8Array(n);
  taken[first] = 1;
  while (order.length < budget) {
    const last = order[order.length - 1]!;
    let pick = -1;
    let far = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      toChosen[i] = Math.min(toChosen[i]!, 1 - s[last * n + i]!);
      if (toChosen[i]! > far) [far, pick] = [toChosen[i]!, i];
    }
    taken[pick] = 1;
    order.push(pick);
  }
  return selected(order);
}

/** Each row's cosine to `query` (raw relevance; a zero query gives 0 everywhere). */
export function relevance(rows: Float32Array, n: number, d: number, query: Float64Array): Float64Array {
  const q = unitRows(query, 1, d);
  return Float64Array.from({ length: n }, (_, i) => {
    let dq = 0;
    let norm = 0;
    for (let c = 0; c < d; c++) {
      const v = rows[i * d + c]!;
      dq += v * q[c]!;
      norm += v * v;
    }
    return norm > 0 ? dq / Math.sqrt(norm) : 0;
  });
}

/** CDPruner's relevance of each crop's rows (d wide) to the question's mean embedding, scaled over all the crops together. */
export function relevanceOver(crops: readonly Float32Array[], d: number, question: Float64Array): Float64Array[] {
  return normaliseRelevance(crops.map((rows) => relevance(rows, rows.length / d, d, question)));
}

/** Relevance scaled to 0..1 over every crop of an image together: (raw - min) / (max - min + 1e-6). */
export function normaliseRelevance(crops: readonly Float64Array[]): Float64Array[] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of crops)
    for (const v of r) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  return crops.map((r) => r.map((v) => (v - lo) / (hi - lo + 1e-6)));
}

/**
 * CDPruner: the greedy MAP of the DPP with kernel L = diag(r) S diag(r), S the cosines of the rows
 * and r their relevance (0..1); stops early where the kernel's rank runs out.
 */
export function cdpruner(rows: Float32Array, n: number, d: number, r: ArrayLike<number>, budget: number): Selected {
  const cos = new RowCosines(rows, n, d);
  // a row's cosine with itself is 1 (0 for a zero row), exactly: uniform relevance ties, and the first row wins
  const self = Float64Array.from({ length: n }, (_, i) => (rows.subarray(i * d, (i + 1) * d).some((v) => v !== 0) ? 1 : 0));
  const d2 = Float64Array.from({ length: n }, (_, i) => r[i]! * self[i]! * r[i]!);
  const c: Float64Array[] = [];
  const order: number[] = [];
  while (order.length < Math.min(budget, n)) {
    const j = argmax(d2);
    if (!(d2[j]! > 1e-12)) break; // the kernel's rank is exhausted: nothing adds volume
    const scale = Math.sqrt(d2[j]!);
    const e = new Float64Array(n);
    const sj = cos.of(j);
    for (let i = 0; i < n; i++) {
      let v = r[j]! * (i === j ? self[j]! : sj[i]!) * r[i]!;
      for (const ct of c) v -= ct[j]! * ct[i]!;
      e[i] = v / scale;
    }
    c.push(e);
    for (let i = 0; i < n; i++) d2[i] = d2[i]! - e[i]! ** 2;
    d2[j] = -Infinity;
    order.push(j);
  }
  return selected(order);
}
