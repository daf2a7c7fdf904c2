/**
 * The reductions that choose patches without merging them, CDPruner, VisPruner, DivPrune and the
 * random baseline, and the pooling baseline, as a Reduction the rest of the pipeline reads as it
 * reads PruMerge's: kept patches in ascending order, no spatial supplement, no remainder row
 * (pooling: each window's mean, its patches as the "merged" ones). docs/reductions.md.
 */
import type { ReduceMode } from '../../shared/reduceMode';
import { poolRows, randomRows } from './baselines';
import { cdpruner, divprune, type Selected } from './diversity';
import { reduceVisualTokens, type Reduction } from './prumerge';
import { rowsAt, TapsError, type TowerTaps } from './visionTaps';
import { vispruner } from './vispruner';

export type SelectionMode =
  { readonly kind: 'cdpruner' | 'vispruner' | 'divprune' | 'random'; readonly k: number } | { readonly kind: 'pool'; readonly k: number };

export function isSelection(mode: ReduceMode): mode is SelectionMode {
  return ['cdpruner', 'vispruner', 'divprune', 'random', 'pool'].includes(mode.kind);
}

/** The selections that read the projector's rows (what the language model reads), not the tower's. */
export function readsProjectedRows(mode: ReduceMode): boolean {
  return mode.kind === 'cdpruner' || mode.kind === 'divprune';
}

export interface SelectionInputs {
  /** (valid patches, text hidden) the projector's rows of the crop's valid patches: CDPruner, DivPrune. */
  readonly projected?: Float32Array;
  readonly projectedWidth?: number;
  /** Each valid patch's relevance to the question, 0..1 over the image's crops (CDPruner; absent: all 1, no question). */
  readonly relevance?: ArrayLike<number>;
  /** Each valid patch's attention for VisPruner, in place of the tower's (the CLI's taps file may give it). */
  readonly score?: ArrayLike<number>;
}

/** `mode` over the patches `valid` (ascending; default all) of one crop of a `grid` x `grid` tower. */
export function selectVisualTokens(
  taps: TowerTaps,
  mode: SelectionMode,
  grid: number,
  valid?: Int32Array,
  inputs: SelectionInputs = {},
): Reduction {
  // the features, scores and outlier statistics of the patches, as the unreduced reading has them
  const base = reduceVisualTokens(taps, { kind: 'none' }, valid);
  const n = base.patches;
  const width = base.width;
  const patchOf = (local: number): number => (valid ? valid[local]! : local);
  if (mode.kind === 'pool') {
    const patches = valid ?? Int32Array.from({ length: n }, (_, i) => i);
    const pooled = poolRows(base.features, width, grid, patches, mode.k);
    return {
      ...base,
      mode,
      rows: pooled.kept.length,
      features: pooled.features,
      kept: pooled.kept,
      clusters: pooled.clusters,
    };
  }
  const chosen = choose(mode, base, inputs, valid);
  const kept = chosen.kept.map(patchOf);
  const weighed = mode.kind === 'cdpruner' ? inputs.relevance : undefined;
  const relevance = weighed && new Float32Array(base.attention.length);
  if (relevance) for (let i = 0; i < n; i++) relevance[patchOf(i)] = weighed![i]!;
  return {
    ...base,
    mode,
    rows: kept.length,
    features: rowsAt(base.features, chosen.kept, width),
    kept,
    clusters: Array.from(kept, () => new Int32Array(0)),
    order: chosen.order.map(patchOf),
    ...(relevance ? { relevance } : {}),
  };
}

function choose(mode: Exclude<SelectionMode, { kind: 'pool' }>, base: Reduction, inputs: SelectionInputs, valid?: Int32Array): Selected {
  const n = base.patches;
  const projected = (): { rows: Float32Array; width: number } => {
    if (!inputs.projected || !inputs.projectedWidth || inputs.projected.length !== n * inputs.projectedWidth)
      throw new TapsError(`${mode.kind} chooses among the projector's rows: it needs them for the crop's ${n} patches`);
    return { rows: inputs.projected, width: inputs.projectedWidth };
  };
  switch (mode.kind) {
    case 'random':
      return randomRows(n, mode.k);
    case 'vispruner': {
      const score = inputs.score ?? (valid ? Array.from(valid, (p) => base.attention[p]!) : base.attention);
      return vispruner(base.features, n, base.width, score, mode.k);
    }
    case 'divprune': {
      const { rows, width } = projected();
      return divprune(rows, n, width, mode.k);
    }
    case 'cdpruner': {
      const { rows, width } = projected();
      return cdpruner(rows, n, width, inputs.relevance ?? new Float64Array(n).fill(1), mode.k);
    }
  }
}
