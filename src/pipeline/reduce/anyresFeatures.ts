/**
 * LLaVA-NeXT's visual rows from its sub-images' features (docs/llava-next.md):
 *
 *   none:     pack_image_features: the overview's patches, then the tiles' patches as one grid,
 *             unpadded, in grid raster order, with the image_newline row after each grid row
 *   reduced:  each sub-image reduced over its valid patches, overview first, rows concatenated,
 *             no image_newline rows
 */
import { AnyresLayout } from '../image/anyres';

/** Where the image_newline rows go among the projected rows: after `overview` rows, one per `lineLength`. */
export interface NewlinePlan {
  readonly overview: number;
  readonly lineLength: number;
  readonly lines: number;
}

/**
 * (rows, width) the unreduced vision rows in pack_image_features' order, from each sub-image's
 * (grid^2, width) patch features (CLS already dropped), overview first.
 */
export function packUnreduced(
  patches: readonly Float32Array[],
  layout: AnyresLayout,
  width: number,
): { features: Float32Array; plan: NewlinePlan } {
  const { grid, tileCols } = layout;
  const [r0, r1] = layout.rows;
  const [c0, c1] = layout.cols;
  const overview = grid * grid;
  const lineLength = c1 - c0;
  const lines = r1 - r0;
  const features = new Float32Array((overview + lines * lineLength) * width);
  features.set(patches[0]!.subarray(0, overview * width));
  let at = overview;
  for (let r = r0; r < r1; r++) {
    for (let c = c0; c < c1; c++) {
      const tile = patches[1 + Math.floor(r / grid) * tileCols + Math.floor(c / grid)]!;
      const p = (r % grid) * grid + (c % grid);
      features.set(tile.subarray(p * width, (p + 1) * width), at++ * width);
    }
  }
  return { features, plan: { overview, lineLength, lines } };
}

/** The projected rows with the image_newline row inserted after each line of the tiles' grid. */
export function insertNewlines(embeds: Float32Array, hidden: number, plan: NewlinePlan, newline: Float32Array): Float32Array {
  const { overview, lineLength, lines } = plan;
  const out = new Float32Array((overview + lines * (lineLength + 1)) * hidden);
  out.set(embeds.subarray(0, overview * hidden));
  let from = overview;
  let to = overview;
  for (let l = 0; l < lines; l++) {
    out.set(embeds.subarray(from * hidden, (from + lineLength) * hidden), to * hidden);
    from += lineLength;
    to += lineLength;
    out.set(newline, to++ * hidden);
  }
  return out;
}
