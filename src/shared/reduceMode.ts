/** How the N patch tokens of the vision tower are reduced before the projector (docs/reductions.md). */
import { UserError } from '../common/errors';
export type ReduceMode =
  | { readonly kind: 'none' }
  | { readonly kind: 'prumerge' }
  | { readonly kind: 'prumerge+' }
  | { readonly kind: BudgetKind; readonly k: number }
  /** K x K average pooling of the features on the patch grid (a baseline). */
  | { readonly kind: 'pool'; readonly k: number };

/** The reductions that keep a fixed number of patches per crop, `kind:T`, and merge nothing but top-k's remainder. */
export type BudgetKind = 'topk' | 'cdpruner' | 'vispruner' | 'divprune' | 'random';
const BUDGET_KINDS: readonly string[] = ['topk', 'cdpruner', 'vispruner', 'divprune', 'random'] satisfies BudgetKind[];

export const REDUCE_MODE_SYNTAX =
  'none | prumerge | prumerge+ | topk:T | cdpruner:T | vispruner:T | divprune:T | random:T | pool:K (T, K whole numbers >= 1)';

export class ReduceModeError extends UserError {
  override readonly name = 'ReduceModeError';
}

/** Parses the textual form used by the CLI and the settings: `none`, `prumerge`, `prumerge+`, `topk:32`, `cdpruner:64`, `pool:2`... */
export function parseReduceMode(text: string): ReduceMode {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === 'prumerge' || t === 'prumerge+') {
    return { kind: t };
  }
  const m = /^([a-z]+):(\d+)$/.exec(t);
  if (m && (BUDGET_KINDS.includes(m[1]!) || m[1] === 'pool')) {
    const k = Number(m[2]);
    if (Number.isSafeInteger(k) && k >= 1) {
      return { kind: m[1] as BudgetKind | 'pool', k };
    }
  }
  throw new ReduceModeError(`unknown reduction "${text}": expected ${REDUCE_MODE_SYNTAX}`);
}

/** Whether `text` is a reading parseReading reads: a reduction, at low detail or not. */
export function isReduceModeText(text: string): boolean {
  try {
    parseReading(text);
    return true;
  } catch {
    return false;
  }
}

export function formatReduceMode(mode: ReduceMode): string {
  return 'k' in mode ? `${mode.kind}:${mode.k}` : mode.kind;
}

/**
 * How much of the image the model reads: `auto`, its own layout (LLaVA-OneVision: the base image
 * and up to 36 tiles); `medium`, the base image and at most 4 tiles, the best of the model's own
 * grids that has no more (the tiled layouts, LLaVA-NeXT and LLaVA-OneVision); `low`, one crop of
 * the image padded to a square, as transformers reads each of several images in one prompt
 * (LLaVA-OneVision only: other layouts have no such path).
 */
export type Detail = 'auto' | 'medium' | 'low';
export const DETAILS: readonly Detail[] = ['auto', 'medium', 'low'];

/** The most tiles `medium` reads beside the base image. */
export const MEDIUM_MAX_TILES = 4;

export function parseDetail(text: string): Detail {
  const t = text.trim().toLowerCase();
  if (t === 'auto' || t === 'medium' || t === 'low') return t;
  throw new ReduceModeError(`unknown detail "${text}": expected auto, medium or low`);
}

/** The chat's and the heatmap's choice: a reduction and the detail, as one text (`prumerge`, `prumerge@low`). */
export interface Reading {
  readonly reduce: ReduceMode;
  readonly detail: Detail;
}

export function parseReading(text: string): Reading {
  const t = text.trim().toLowerCase();
  const m = /^(.*)@(low|medium)$/.exec(t);
  return m ? { reduce: parseReduceMode(m[1]!), detail: m[2] as Detail } : { reduce: parseReduceMode(t), detail: 'auto' };
}

export function formatReading(r: Reading): string {
  return formatReduceMode(r.reduce) + (r.detail === 'auto' ? '' : `@${r.detail}`);
}
