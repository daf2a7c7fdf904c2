/**
 * How a model turns an image into visual rows, as model.json's `layout` block records it
 * (docs/architecture.md, "Visual layout"). The pipeline's layout room (src/pipeline/layout) plans
 * the crops and assembles the rows from it; nothing else reads the layout's kind.
 *
 *   grid   one crop, one grid of patches (LLaVA-1.5, LLaVA-Interleave)
 *   tiles  an overview and anyres tiles, unpadded, each tile-grid row followed by the learned
 *          image_newline row; grids larger than maxTiles tiles' patches downsampled (LLaVA-NeXT,
 *          LLaVA-OneVision). `paddedCrop`: the model also reads an image as one padded crop and
 *          a newline row (LLaVA-OneVision's reading of one of several images: detail low)
 */
import type { OfferedDetails } from '../shared/reductionChoices';

/** The grids a tiled layout reads an image at: (height, width) in pixels, each a whole number of tiles. */
export type Pinpoints = readonly (readonly [number, number])[];

export type ModelLayout =
  | { readonly kind: 'grid' }
  | {
      readonly kind: 'tiles';
      readonly gridPinpoints: Pinpoints;
      /** The learned row after each row of the tiles' grid (text hidden). */
      readonly imageNewline: readonly number[];
      /** anyres_max_N's N: an unreduced tile grid larger than N tiles' patches is downsampled. */
      readonly maxTiles?: number;
      readonly paddedCrop: boolean;
    };

/** The readings a model offers besides its own: medium where it has tiles, low where it reads one padded crop. */
export function offeredDetails(layout: ModelLayout): OfferedDetails {
  return { medium: layout.kind === 'tiles', low: layout.kind === 'tiles' && layout.paddedCrop };
}

/** model.json before the layout block: `next` held the tiled layouts' grids, newline and anyres_max_N. */
export interface LegacyTiles {
  readonly gridPinpoints: Pinpoints;
  readonly imageNewline: readonly number[];
  readonly maxTiles?: number;
}

/** The layout of a folder built before the block: tiles where it had `next` (padded crop with anyres_max_N, OneVision's), else a grid. */
export function layoutFromLegacy(next: LegacyTiles | undefined | null): ModelLayout {
  if (!next) return { kind: 'grid' };
  return {
    kind: 'tiles',
    gridPinpoints: next.gridPinpoints,
    imageNewline: next.imageNewline,
    ...(next.maxTiles !== undefined ? { maxTiles: next.maxTiles } : {}),
    paddedCrop: next.maxTiles !== undefined,
  };
}

/** Whether `v` is a list of (height, width) pairs, each a whole number of `tile` px tiles. */
export function isPinpoints(v: unknown, tile: number): v is [number, number][] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => Number.isSafeInteger(x) && x > 0 && x % tile === 0))
  );
}
