/**
 * The rows the projector reads for a reading, and what follows the projector: a reduction's kept
 * rows crop after crop (no newline rows, no downsampling: a reduction replaces the layout's
 * extra rows); unreduced, the layout's own rows (tileRows.ts for the tiles).
 */
import type { ReduceMode } from '../../shared/reduceMode';
import type { Reduction } from '../reduce/prumerge';
import { patchFeatures, TowerTaps } from '../reduce/visionTaps';
import type { CropPlan } from './cropPlan';
import type { Reading } from './reading';
import { downsampleGrid, insertNewlines, packUnreduced } from './tileRows';

export interface VisualRows {
  /** (rows, vision width) the projector's input. */
  readonly features: Float32Array;
  /** Rows that enter the prompt, after `finish`. */
  readonly rows: number;
  /** The projected rows -> the prompt's rows (newline rows, OneVision's downsampling). */
  readonly finish: (projected: Float32Array, hidden: number) => Float32Array;
}

const asIs = (projected: Float32Array): Float32Array => projected;

export function visualRows(
  reading: Reading,
  plan: CropPlan,
  taps: readonly TowerTaps[],
  reductions: readonly Reduction[],
  mode: ReduceMode,
  width: number,
): VisualRows {
  if (mode.kind !== 'none') {
    const features = concatRows(reductions.map((r) => r.features));
    return { features, rows: features.length / width, finish: asIs };
  }
  if (reading.kind === 'grid') return { features: patchFeatures(taps[0]!), rows: plan.tokens, finish: asIs };
  const newline = reading.newline;
  if (reading.kind === 'paddedCrop') {
    return { features: patchFeatures(taps[0]!), rows: plan.tokens, finish: (projected) => concatRows([projected, newline]) };
  }
  const layout = plan.tiles!;
  const packed = packUnreduced(taps.map(patchFeatures), layout, width);
  return {
    features: packed.features,
    rows: plan.tokens,
    finish: (projected, hidden) => {
      // OneVision downsamples the projected grid: interpolation mixes rows after the projector's non-linearity
      const grid = layout.downsampled
        ? downsampleGrid(projected, hidden, packed.plan, layout.downsampled)
        : { embeds: projected, plan: packed.plan };
      return insertNewlines(grid.embeds, hidden, grid.plan, newline);
    },
  };
}

/** (rows, width) blocks one after the other. */
function concatRows(blocks: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
