/** Rows scaled to unit length, in float64: the cosine every selection below is built on. */

/** (n, d) rows of `x` scaled to length 1; a zero row stays zero (its cosine to anything is 0). */
export function unitRows(x: Float32Array | Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[i * d + c]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let c = 0; c < d; c++) out[i * d + c] = x[i * d + c]! * inv;
  }
  return out;
}

/** Row i of `u` dotted with row j of `v` (both d wide). */
export function dot(u: Float64Array, i: number, v: Float64Array, j: number, d: number): number {
  let s = 0;
  const a = i * d;
  const b = j * d;
  for (let c = 0; c < d; c++) s += u[a + c]! * v[b + c]!;
  return s;
}

/** (n, n) the cosines of every pair of `u`'s unit rows. */
export function cosines(u: Float64Array, n: number, d: number): Float64Array {
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const c = dot(u, i, u, j, d);
      s[i * n + j] = c;
      s[j * n + i] = c;
    }
  }
  return s;
}

/** The indices of `values` from the highest, ties to the lower index. */
export function descending(values: ArrayLike<number>, among?: readonly number[]): number[] {
  const idx = among ? [...among] : Array.from({ length: values.length }, (_, i) => i);
  return idx.sort((a, b) => values[b]! - values[a]! || a - b);
}

/** The index of the largest of `values`, the first on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
