/**
 * The tiled layouts' visual rows from their crops' features (docs/llava-next.md,
 * docs/llava-onevision.md):
 *
 *   none:     pack_image_features: the overview's patches, then the tiles' patches as one grid,
 *             unpadded, in grid raster order (LLaVA-OneVision: projected, then downsampled
 *             bilinearly when larger than anyres_max_N allows), with the image_newline row after
 *             each grid row
 *   reduced:  each sub-image reduced over its valid patches, overview first, rows concatenated,
 *             no image_newline rows and no downsampling
 */
import type { AnyresLayout } from '../image/anyres';

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

/**
 * torch's interpolate(mode="bilinear", align_corners=False) of the grid part of `embeds` (the
 * rows after the overview, plan.lines x plan.lineLength) to `to`: the source position of output
 * index o is (o + 0.5) * in / out - 0.5, clamped at 0, between its two neighbours.
 */
export function downsampleGrid(
  embeds: Float32Array,
  hidden: number,
  plan: NewlinePlan,
  to: { readonly rows: number; readonly cols: number },
): { embeds: Float32Array; plan: NewlinePlan } {
  const { overview, lineLength: inW, lines: inH } = plan;
  const out = new Float32Array((overview + to.rows * to.cols) * hidden);
  out.set(embeds.subarray(0, overview * hidden));
  const taps = (outSize: number, inSize: number): { i0: Int32Array; i1: Int32Array; t: Float64Array } => {
    const i0 = new Int32Array(outSize);
    const i1 = new Int32Array(outSize);
    const t = new Float64Array(outSize);
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const src = Math.max((o + 0.5) * scale - 0.5, 0);
      i0[o] = Math.min(Math.floor(src), inSize - 1);
      i1[o] = Math.min(i0[o]! + 1, inSize - 1);
      t[o] = src - i0[o]!;
    }
    return { i0, i1, t };
  };
  const ys = taps(to.rows, inH);
  const xs = taps(to.cols, inW);
  const row = (y: number, x: number): number => (overview + y * inW + x) * hidden;
  for (let oy = 0; oy < to.rows; oy++) {
    const ty = ys.t[oy]!;
    for (let ox = 0; ox < to.cols; ox++) {
      const tx = xs.t[ox]!;
      const a = row(ys.i0[oy]!, xs.i0[ox]!);
      const b = row(ys.i0[oy]!, xs.i1[ox]!);
      const c = row(ys.i1[oy]!, xs.i0[ox]!);
      const d = row(ys.i1[oy]!, xs.i1[ox]!);
      const at = (overview + oy * to.cols + ox) * hidden;
      for (let h = 0; h < hidden; h++) {
        const top = embeds[a + h]! * (1 - tx) + embeds[b + h]! * tx;
        const bottom = embeds[c + h]! * (1 - tx) + embeds[d + h]! * tx;
        out[at + h] = top * (1 - ty) + bottom * ty;
      }
    }
  }
  return { embeds: out, plan: { overview, lineLength: to.cols, lines: to.rows } };
}
