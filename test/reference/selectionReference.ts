/**
 * Plain second implementations of the selections in docs/reductions.md, written from the
 * definitions and sharing no code with src: arrays of arrays in float64, determinants by Gaussian
 * elimination, distances recomputed from scratch at every step.
 */
export type Matrix = number[][];

function cos(a: number[], b: number[]): number {
  const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
  const na = Math.sqrt(a.reduce((s, v) => s + v * v, 0));
  const nb = Math.sqrt(b.reduce((s, v) => s + v * v, 0));
  return na === 0 || nb === 0 ? 0 : dot / (na * nb);
}

/** Every pair's cosine: dot products over the product of the norms, each norm taken once. */
function cosMatrix(rows: Matrix): Matrix {
  const norms = rows.map((r) => Math.sqrt(r.reduce((s, v) => s + v * v, 0)));
  const m: Matrix = rows.map(() => new Array<number>(rows.length).fill(0));
  for (let i = 0; i < rows.length; i++) {
    for (let j = i; j < rows.length; j++) {
      let dot = 0;
      const a = rows[i]!;
      const b = rows[j]!;
      for (let c = 0; c < a.length; c++) dot += a[c]! * b[c]!;
      // a row's cosine with itself is 1 by definition (0 for a zero row), not its rounding
      const v = norms[i] === 0 || norms[j] === 0 ? 0 : i === j ? 1 : dot / (norms[i]! * norms[j]!);
      m[i]![j] = v;
      m[j]![i] = v;
    }
  }
  return m;
}

/** The determinant of a square matrix, by elimination with partial pivoting. */
export function determinant(m: Matrix): number {
  const a = m.map((r) => [...r]);
  const n = a.length;
  let det = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    if (a[p]![c] === 0) return 0;
    if (p !== c) {
      [a[p], a[c]] = [a[c]!, a[p]!];
      det = -det;
    }
    det *= a[c]![c]!;
    for (let r = c + 1; r < n; r++) {
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k < n; k++) a[r]![k] = a[r]![k]! - f * a[c]![k]!;
    }
  }
  return det;
}

/** Greedy MAP by its definition: each step adds the row that makes det(L_S) largest, while it still grows. */
export function cdprunerReference(rows: Matrix, relevance: number[], budget: number): number[] {
  const n = rows.length;
  const S = cosMatrix(rows);
  const L = S.map((row, i) => row.map((v, j) => relevance[i]! * v * relevance[j]!));
  const chosen: number[] = [];
  let volume = 1;
  while (chosen.length < Math.min(budget, n)) {
    let best = -1;
    let bestDet = -Infinity;
    for (let j = 0; j < n; j++) {
      if (chosen.includes(j)) continue;
      const s = [...chosen, j];
      const det = determinant(s.map((a) => s.map((b) => L[a]![b]!)));
      if (det > bestDet) [best, bestDet] = [j, det];
    }
    if (bestDet / volume <= 1e-12) break;
    chosen.push(best);
    volume = bestDet;
  }
  return chosen;
}

/** Relevance by the definition: cosine to the question's mean embedding row, min-max over every crop together. */
export function relevanceReference(crops: Matrix[], question: Matrix): number[][] {
  const e = question[0]!.map((_, c) => question.reduce((s, r) => s + r[c]!, 0) / question.length);
  const raw = crops.map((rows) => rows.map((r) => cos(r, e)));
  const flat = raw.flat();
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  return raw.map((r) => r.map((v) => (v - lo) / (hi - lo + 1e-6)));
}

/** DivPrune by its definition, every minimum recomputed. */
export function divpruneReference(rows: Matrix, budget: number): number[] {
  const n = rows.length;
  const S = cosMatrix(rows);
  const dist = (i: number, j: number): number => 1 - S[i]![j]!;
  if (budget >= n) return [...Array(n).keys()];
  const nearestOther = [...Array(n).keys()].map((i) =>
    n === 1 ? 0 : Math.min(...[...Array(n).keys()].filter((j) => j !== i).map((j) => dist(i, j))),
  );
  const chosen = [nearestOther.indexOf(Math.max(...nearestOther))];
  while (chosen.length < budget) {
    const candidates = [...Array(n).keys()].filter((i) => !chosen.includes(i));
    const far = candidates.map((i) => Math.min(...chosen.map((c) => dist(i, c))));
    chosen.push(candidates[far.indexOf(Math.max(...far))]!);
  }
  return chosen;
}

/** VisPruner by its definition: the important half by score, then rounds that drop A's members most like B. */
export function visprunerReference(features: Matrix, score: number[], budget: number): number[] {
  const n = features.length;
  const byScore = [...Array(n).keys()].sort((a, b) => score[b]! - score[a]! || a - b);
  if (budget >= n) return byScore;
  const important = byScore.slice(0, Math.floor(budget / 2));
  let rest = byScore.slice(important.length);
  const need = budget - important.length;
  const S = cosMatrix(features);
  while (rest.length > need) {
    const a = rest.filter((_, i) => i % 2 === 0);
    const b = rest.filter((_, i) => i % 2 === 1);
    const sims = new Map(a.map((p) => [p, Math.max(...b.map((q) => S[p]![q]!))]));
    const sorted = [...a].sort((x, y) => sims.get(y)! - sims.get(x)! || x - y);
    const drop = sorted.slice(0, Math.min(8, rest.length - need));
    rest = [...sorted.filter((p) => !drop.includes(p)), ...b];
  }
  return [...important, ...rest];
}
