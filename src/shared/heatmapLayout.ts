/**
 * What the token heatmap shows, computed once for both of its renderers (the PNG export in
 * src/pipeline/image/heatmap.ts and the panel in webview/heatmap.ts): each patch's box on the image as
 * the user sees it (padding and crop undone), its colour, whether it was kept and how, and the
 * sentence that sums the reduction up. Pure: it runs in the webview too.
 */
import { patchColour } from './attentionColour';
import type { GridReduction, Inspection, SubImageInspection } from './results';
import { Box, patchBox } from './imageGeometry';

/**
 * kept: a CLS-attention outlier (or top-k); spatial: added by PruMerge+'s spatial supplement;
 * removed: LLaVA-NeXT's unpadding drops it (it lies mostly in the padding).
 */
export type PatchRole = 'kept' | 'spatial' | 'other' | 'removed';

export interface HeatmapCell {
  /** Which sub-image it belongs to (0: the only image, or LLaVA-NeXT's overview). */
  readonly sub: number;
  readonly patch: number;
  /** In source image pixels. */
  readonly box: Box;
  readonly colour: string;
  readonly role: PatchRole;
}

export interface HeatmapLayout {
  /** The source image's size: the cells' coordinate space. */
  readonly width: number;
  readonly height: number;
  /** The patches that cover part of the picture (patches wholly in the padding have none). */
  readonly cells: HeatmapCell[];
  /** e.g. "prumerge keeps 53 of 576 visual tokens, 10.9x fewer (52 by attention, 0 spatial, 1 remainder)". */
  readonly headline: string;
  /** Said when kept patches lie wholly in the padding, so not drawn; '' otherwise. */
  readonly paddingNote: string;
}

export type HeatmapInput = Pick<
  Inspection,
  'mode' | 'n' | 'rows' | 'kept' | 'spatial' | 'remainder' | 'attention' | 'relevance' | 'geometry' | 'grid' | 'gridCoverage' | 'question'
>;

export function heatmapLayout(r: HeatmapInput): HeatmapLayout {
  const reduced = r.mode !== 'none';
  const { cells, keptInPadding } = gridCells(r, 0, r.grid, reduced, r.gridCoverage);
  const headline = reduced
    ? `${r.mode} keeps ${r.rows} of ${r.n} visual tokens, ${(r.n / r.rows).toFixed(1)}x fewer (${howKept(r)})`
    : `all ${r.n} visual tokens (${r.grid} x ${r.grid} patches)`;
  const paddingNote = keptInPadding > 0 ? `${keptInPadding} kept patches lie in the padding and are not drawn.` : '';
  return { width: r.geometry.source.width, height: r.geometry.source.height, cells, headline, paddingNote };
}

/** How a reduction chose what it kept, in the heatmap's headline (docs/reductions.md). */
function howKept(r: Pick<HeatmapInput, 'mode' | 'kept' | 'spatial' | 'remainder' | 'question'>): string {
  switch (r.mode.replace(/:.*/, '')) {
    case 'cdpruner':
      // opened from an answer, the inspection weighs the patches by that answer's question, as the answer did
      return r.question !== undefined
        ? `chosen for diversity and relevance to "${shortened(r.question)}", the colour; none merged`
        : 'chosen for diversity, every patch weighed alike: an answer also weighs them by its question; none merged';
    case 'vispruner':
      return 'half by attention, the rest with duplicates removed; none merged';
    case 'divprune':
      return 'chosen for diversity; none merged';
    case 'random':
      return 'drawn at random with a fixed seed; none merged';
    case 'pool':
      return `${r.mode.replace('pool:', '')} x ${r.mode.replace('pool:', '')} windows averaged`;
    default:
      return `${r.kept.length - r.spatial.length} by attention, ${r.spatial.length} spatial, ${r.remainder ? 1 : 0} remainder`;
  }
}

/** A question as a headline quotes it: its first line, at most 60 characters. */
function shortened(question: string): string {
  const line = question.trim().split(/\r?\n/)[0]!;
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/** Whether a reduction merges patches into those it keeps (PruMerge, top-k, pooling), so the heatmap can show what merged. */
export function merges(mode: string): boolean {
  return !/^(cdpruner|vispruner|divprune|random):/.test(mode) && mode !== 'none';
}

export interface HeatmapFigure {
  /** '' for LLaVA-1.5's one picture; LLaVA-NeXT's say which sub-images they show. */
  readonly title: string;
  readonly layout: HeatmapLayout;
}

/**
 * The pictures of an inspection: LLaVA-1.5's one; LLaVA-NeXT's overview, and its tiles mapped
 * back together onto the picture at full resolution, with what unpadding removes shaded.
 */
export function heatmapFigures(r: Inspection): { headline: string; figures: HeatmapFigure[] } {
  if (!r.subImages) {
    const layout = heatmapLayout(r);
    return { headline: layout.headline, figures: [{ title: '', layout }] };
  }
  const subs = r.subImages;
  const reduced = r.mode !== 'none';
  const overview = { ...heatmapLayout(subInput(r, subs[0]!)), headline: '' };
  const cells = subs.slice(1).flatMap((sub, i) => gridCells(sub, i + 1, r.grid, reduced, r.gridCoverage).cells);
  const tiles = subs.slice(1);
  const rows = Math.max(...tiles.map((t) => t.row)) + 1;
  const cols = Math.max(...tiles.map((t) => t.col)) + 1;
  const side = r.geometry.crop.width;
  const total = r.total ?? 0;
  const visual = r.visualRows ?? 0;
  const headline = reduced
    ? `${r.mode} keeps ${visual} of ${total} visual tokens, ${(total / visual).toFixed(1)}x fewer (overview and ${tiles.length} tiles, each reduced over the patches unpadding keeps${/^(prumerge|topk)/.test(r.mode) ? '' : `; ${howKept(r)}`})`
    : `all ${total} visual tokens (overview and ${tiles.length} tiles of ${r.grid} x ${r.grid} patches, unpadded, a newline row after each grid row)`;
  return {
    headline,
    figures: [
      { title: `Overview: the whole image squashed to ${side} x ${side}`, layout: overview },
      {
        title: `Tiles: ${rows} x ${cols} of ${side} x ${side} at ${cols * side} x ${rows * side}; shaded patches are padding that unpadding removes`,
        layout: { width: overview.width, height: overview.height, cells, headline: '', paddingNote: '' },
      },
    ],
  };
}

function subInput(r: Inspection, sub: SubImageInspection): HeatmapInput {
  return { ...sub, mode: r.mode, n: r.grid * r.grid, grid: r.grid, ...(r.gridCoverage ? { gridCoverage: r.gridCoverage } : {}) };
}

/**
 * The cells of one grid of patches (sub-image `sub`) that cover part of the picture, coloured by
 * their score (CLS attention or attention received, or CDPruner's relevance) relative to the grid's highest; patches outside `valid` (when given) are 'removed'.
 * Also counts the kept patches that lie wholly in padding, which have no cell.
 */
function gridCells(
  g: Pick<GridReduction, 'kept' | 'spatial' | 'attention' | 'relevance' | 'geometry'> & { readonly valid?: readonly number[] },
  sub: number,
  grid: number,
  reduced: boolean,
  coverage = 1,
): { cells: HeatmapCell[]; keptInPadding: number } {
  const score = patchScores(g);
  let max = 0;
  for (const a of score) max = Math.max(max, a);
  const valid = g.valid && new Set(g.valid);
  const kept = new Set(g.kept);
  const spatial = new Set(g.spatial);
  const cells: HeatmapCell[] = [];
  let keptInPadding = 0;
  for (let p = 0; p < grid * grid; p++) {
    const box = patchBox(g.geometry, p, grid, coverage);
    if (!box) {
      if (reduced && kept.has(p)) keptInPadding++;
      continue;
    }
    const role: PatchRole =
      valid && !valid.has(p) ? 'removed' : !reduced ? 'other' : spatial.has(p) ? 'spatial' : kept.has(p) ? 'kept' : 'other';
    cells.push({ sub, patch: p, box, colour: patchColour(score[p]!, max), role });
  }
  return { cells, keptInPadding };
}

/** What each patch's colour measures: CDPruner's relevance to the question where there is one, else the tower's attention. */
export function patchScores(g: Pick<GridReduction, 'attention' | 'relevance'>): readonly number[] {
  return g.relevance ?? g.attention;
}

/** A line of the legend under the heatmap. */
export type LegendKey = 'kept' | 'spatial' | 'merged' | 'removed';

/**
 * The legend's keys for an inspection's figures: only what they can show. Unpadding's shading only
 * where tiles were unpadded (never for LLaVA-1.5), the spatial supplement only where it added patches.
 */
export function legendKeys(mode: string, figures: readonly HeatmapFigure[]): LegendKey[] {
  const roles = new Set(figures.flatMap((f) => f.layout.cells.map((c) => c.role)));
  const reduced = mode !== 'none';
  const keys: LegendKey[] = [];
  if (reduced) keys.push('kept');
  if (roles.has('spatial')) keys.push('spatial');
  if (merges(mode)) keys.push('merged');
  if (roles.has('removed')) keys.push('removed');
  return keys;
}
