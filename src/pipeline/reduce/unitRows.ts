/** Rows scaled to unit length and their cosines: what every selection is built on. */
import { COSINE_BLOCK, MergeWorkspace } from './mergeKernels';

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

/**
 * The cosines of rows of `x` (n, d) to every row, in float32, by the merge step's WebAssembly SIMD
 * kernel (the pairwise cosines are most of the selections' work). A zero row's cosines are 0.
 */
export class RowCosines {
  private readonly ws: MergeWorkspace;
  private readonly row: Float32Array;

  constructor(
    x: Float32Array,
    private readonly n: number,
    d: number,
  ) {
    this.ws = new MergeWorkspace(x, x, n, d);
    this.row = new Float32Array(n);
  }

  /** Row i dotted with row j in float64, by the SIMD kernel (products of float32 are exact in float64). */
  dot64(i: number, j: number): number {
    return this.ws.hiddenDot(i, j);
  }

  /** Row i's cosine to every row (valid until the next call). */
  of(i: number): Float32Array {
    this.row.set(this.ws.compareOne(i).subarray(0, this.n));
    return this.row;
  }

  /** (n, n) every pair, each measured once. */
  all(): Float32Array {
    const { n } = this;
    const s = new Float32Array(n * n);
    for (let i = 0; i < n; i += COSINE_BLOCK) {
      const rows = [0, 1, 2, 3].map((k) => Math.min(i + k, n - 1));
      const width = n - i;
      const sims = this.ws.compareFrom(i, rows[0]!, rows[1]!, rows[2]!, rows[3]!);
      for (let k = 0; k < COSINE_BLOCK && i + k < n; k++) {
        const r = i + k;
        s.set(sims.subarray(k * width + k, (k + 1) * width), r * n + r);
        for (let j = r + 1; j < n; j++) s[j * n + r] = sims[k * width + (j - i)]!;
      }
    }
    return s;
  }
}

/** The indices of `values` from the highest, ties to the lower index. */
export function descending(values: ArrayLike<number>): number[] {
  return Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
}

/** The index of the largest of `values`, the first on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
