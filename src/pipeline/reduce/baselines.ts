/**
 * Baselines to measure reductions against (docs/reductions.md): `random:T`, T patches drawn
 * uniformly with a fixed seed, and `pool:K`, K x K average pooling of the vision features on the
 * patch grid, as LLaVA-OneVision does to video frames.
 */
import { SeededRandom } from '../../common/random';
import { selected, type Selected } from './diversity';

/** The seed `random:T` draws with unless told: the same patches every run. */
export const RANDOM_SEED = 0;

/** `budget` of `n` rows drawn without replacement (a partial Fisher-Yates shuffle). */
export function randomRows(n: number, budget: number, seed = RANDOM_SEED): Selected {
  const rng = new SeededRandom(seed);
  const pool = Array.from({ length: n }, (_, i) => i);
  const take = Math.min(budget, n);
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(n - i);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return selected(pool.slice(0, take));
}

export interface Pooled {
  /** (windows, d) the mean of each window's rows, windows in raster order. */
  readonly features: Float32Array;
  /** Each window's first patch (its place on the grid). */
  readonly kept: Int32Array;
  /** Each window's patches. */
  readonly clusters: Int32Array[];
}

/**
 * K x K windows over the grid x grid patches `valid` (row indices of `features` in raster order);
 * a window at the grid's edge, or holding padding, averages the valid patches it has, and one with
 * none gives no row.
 */
export function poolRows(features: Float32Array, d: number, grid: number, valid: Int32Array, k: number): Pooled {
  const rowOf = new Map(Array.from(valid, (p, i) => [p, i]));
  const kept: number[] = [];
  const clusters: Int32Array[] = [];
  const out: number[] = [];
  for (let wy = 0; wy < grid; wy += k) {
    for (let wx = 0; wx < grid; wx += k) {
      const members: number[] = [];
      for (let y = wy; y < Math.min(wy + k, grid); y++)
        for (let x = wx; x < Math.min(wx + k, grid); x++) if (rowOf.has(y * grid + x)) members.push(y * grid + x);
      if (members.length === 0) continue;
      const mean = new Float64Array(d);
      for (const p of members) {
        const r = rowOf.get(p)!;
        for (let c = 0; c < d; c++) mean[c] = mean[c]! + features[r * d + c]!;
      }
      for (let c = 0; c < d; c++) out.push(mean[c]! / members.length);
      kept.push(members[0]!);
      clusters.push(Int32Array.from(members));
    }
  }
  return { features: Float32Array.from(out), kept: Int32Array.from(kept), clusters };
}
