/**
 * What the token heatmap shows, computed once for both of its renderers (the PNG export in
 * src/pipeline/heatmap.ts and the panel in webview/heatmap.ts): each patch's box on the image as
 * the user sees it (padding and crop undone), its colour, whether it was kept and how, and the
 * sentence that sums the reduction up. Pure: it runs in the webview too.
 */
import { patchColour } from './attentionColour';
import type { Inspection } from './engine';
import { Box, patchBox } from './imageGeometry';

/** kept: a CLS-attention outlier (or top-k); spatial: added by PruMerge+'s spatial supplement. */
export type PatchRole = 'kept' | 'spatial' | 'other';

export interface HeatmapCell {
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
  'mode' | 'n' | 'rows' | 'kept' | 'spatial' | 'remainder' | 'clsAttention' | 'geometry' | 'grid'
>;

export function heatmapLayout(r: HeatmapInput): HeatmapLayout {
  let max = 0;
  for (const a of r.clsAttention) max = Math.max(max, a);
  const reduced = r.mode !== 'none';
  const kept = new Set(r.kept);
  const spatial = new Set(r.spatial);
  const cells: HeatmapCell[] = [];
  let keptInPadding = 0;
  for (let p = 0; p < r.n; p++) {
    const box = patchBox(r.geometry, p, r.grid);
    if (!box) {
      if (reduced && kept.has(p)) keptInPadding++;
      continue;
    }
    const role: PatchRole = !reduced ? 'other' : spatial.has(p) ? 'spatial' : kept.has(p) ? 'kept' : 'other';
    cells.push({ patch: p, box, colour: patchColour(r.clsAttention[p]!, max), role });
  }
  const byAttention = r.kept.length - r.spatial.length;
  const headline = reduced
    ? `${r.mode} keeps ${r.rows} of ${r.n} visual tokens, ${(r.n / r.rows).toFixed(1)}x fewer (${byAttention} by attention, ${r.spatial.length} spatial, ${r.remainder ? 1 : 0} remainder)`
    : `all ${r.n} visual tokens (${r.grid} x ${r.grid} patches)`;
  const paddingNote = keptInPadding > 0 ? `${keptInPadding} kept patches lie in the padding and are not drawn.` : '';
  return { width: r.geometry.source.width, height: r.geometry.source.height, cells, headline, paddingNote };
}
