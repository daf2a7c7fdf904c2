/**
 * Vision taps with the structure PruMerge relies on, for demos and benchmarks when no vision
 * tower is at hand: a few "sink" patches draw most of the CLS attention (as CLIP's do), and keys
 * vary smoothly over the grid so that similar keys sit near each other.
 */
import { SeededRandom } from '../../common/random';
import { ClsTaps } from './visionTaps';

export interface SyntheticTapsOptions {
  /** Patches per side: N = grid * grid (24 for CLIP ViT-L/14-336). */
  readonly grid: number;
  /** Hidden width C. */
  readonly width: number;
  readonly seed: number;
  /** Patches whose key is pushed towards the CLS query; default about 5% of N. */
  readonly sinks?: number;
}

export function syntheticTaps(options: SyntheticTapsOptions): ClsTaps {
  const { grid, width, seed } = options;
  const n = grid * grid;
  const tokens = n + 1;
  const rng = new SeededRandom(seed);
  const hidden = rng.normals(tokens * width);
  const q = rng.normals(tokens * width);
  const k = rng.normals(tokens * width, 0.6);

  // Smooth field over the grid: each channel is a plane wave of random direction and phase.
  const fx = rng.normals(width, (2 * Math.PI) / grid);
  const fy = rng.normals(width, (2 * Math.PI) / grid);
  const phase = Float32Array.from({ length: width }, () => rng.uniform() * 2 * Math.PI);
  for (let p = 0; p < n; p++) {
    const row = Math.floor(p / grid);
    const col = p % grid;
    const o = (p + 1) * width;
    for (let c = 0; c < width; c++) k[o + c]! += 0.8 * Math.cos(fx[c]! * col + fy[c]! * row + phase[c]!);
  }

  // Sinks: add gamma * sqrt(C) * q0 / |q0|^2 to a key, which adds gamma to its attention logit.
  let q0norm2 = 0;
  for (let c = 0; c < width; c++) q0norm2 += q[c]! * q[c]!;
  const sinks = Math.min(options.sinks ?? Math.max(1, Math.round(n * 0.05)), n);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < sinks; i++) {
    const j = i + rng.int(n - i);
    [order[i], order[j]] = [order[j]!, order[i]!];
    const gamma = 3 + 3 * rng.uniform();
    const o = (order[i]! + 1) * width;
    const s = (gamma * Math.sqrt(width)) / q0norm2;
    for (let c = 0; c < width; c++) k[o + c]! += s * q[c]!;
  }
  return { tokens, width, hidden, q, k };
}
