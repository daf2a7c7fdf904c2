/**
 * LLaVA-NeXT's "anyres" layout of one image, as transformers' LlavaNextImageProcessor (slow) and
 * LlavaNextForConditionalGeneration lay it out (docs/llava-next.md):
 *
 *   overview: the whole image squashed to T x T (T = the tower's image size)
 *   tiles:    the image resized into the best grid resolution keeping its aspect, padded centred
 *             with black, cut into T x T tiles, row-major
 *   features: overview's patches, then the tiles' patches as one grid, unpadded, each grid row
 *             followed by the image_newline row
 *
 * Sizes are in pixels of the decoded raster (what the processor sees); pinpoints are (height, width).
 */
import type { Size } from '../../shared/imageGeometry';
import type { SubImageKind } from '../../shared/results';
import type { Pinpoints } from '../../format/visualLayout';

export type { Pinpoints };

export interface SubImage {
  readonly kind: SubImageKind;
  /** Tile row and column in the grid (0, 0 for the overview). */
  readonly row: number;
  readonly col: number;
  /** Patch indices (raster order on the sub-image's own grid) that unpadding keeps: all for the overview. */
  readonly valid: Int32Array;
}

export interface AnyresLayout {
  /** The image as the processor sees it. */
  readonly image: Size;
  /** The chosen grid resolution, and the image resized into it (before the centred padding). */
  readonly best: Size;
  readonly resized: Size;
  readonly padLeft: number;
  readonly padTop: number;
  readonly tileRows: number;
  readonly tileCols: number;
  /** Tower input side T and patches per side. */
  readonly tile: number;
  readonly grid: number;
  /** The unpadded window of the tiles' patch grid ((tileRows * grid) x (tileCols * grid)): [start, end). */
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
  /** Overview first, then the tiles row-major. */
  readonly subImages: readonly SubImage[];
  /**
   * LLaVA-OneVision (anyres_max_N): the unpadded tile grid's size after its bilinear downsampling
   * to about N tiles' worth of patches; absent when the grid is kept as it is.
   */
  readonly downsampled?: { readonly rows: number; readonly cols: number };
  /** Visual tokens without reduction: grid^2 + lines * (lineLength + 1), of the downsampled grid where there is one. */
  readonly tokens: number;
}

/** select_best_resolution: largest effective resolution, then least waste, then list order. */
export function selectBestResolution(image: Size, pinpoints: Pinpoints): Size {
  const { width: w, height: h } = image;
  let best: Size | undefined;
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [height, width] of pinpoints) {
    const scale = Math.min(width / w, height / h);
    const effective = Math.min(Math.trunc(w * scale) * Math.trunc(h * scale), w * h);
    const wasted = width * height - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = { width, height };
    }
  }
  if (!best) throw new Error('no grid resolution to choose from');
  return best;
}

/** get_patch_output_size: the image resized into `target`, keeping its aspect. */
export function patchOutputSize(image: Size, target: Size): Size {
  const scaleW = target.width / image.width;
  const scaleH = target.height / image.height;
  if (scaleW < scaleH) return { width: target.width, height: Math.min(Math.ceil(image.height * scaleW), target.height) };
  return { width: Math.min(Math.ceil(image.width * scaleH), target.width), height: target.height };
}

/** Python's round(x, 7) for the values unpad_image sees (positive, far from ties at 7 digits). */
function round7(x: number): number {
  return Math.round(x * 1e7) / 1e7;
}

/** unpad_image on a (rows x cols) grid for an image of `image` size: the [start, end) rows and columns kept. */
export function unpadWindow(image: Size, rows: number, cols: number): { rows: [number, number]; cols: [number, number] } {
  const { width: w, height: h } = image;
  if (w / h > cols / rows) {
    const newH = Math.trunc(round7(h * (cols / w)));
    const pad = Math.trunc((rows - newH) / 2);
    return { rows: [pad, rows - pad], cols: [0, cols] };
  }
  const newW = Math.trunc(round7(w * (rows / h)));
  const pad = Math.trunc((cols - newW) / 2);
  return { rows: [0, rows], cols: [pad, cols - pad] };
}

/**
 * pack_image_features' downsampling (LLaVA-OneVision, anyres_max_N): an unpadded grid of
 * rows x cols patches larger than 1.1^2 x N tiles' worth shrinks to int(rows // r) x int(cols // r),
 * r = sqrt(rows * cols / (N * grid^2)).
 */
export function downsampledGrid(rows: number, cols: number, grid: number, maxTiles: number): { rows: number; cols: number } | undefined {
  const ratio = Math.sqrt((rows * cols) / (maxTiles * grid * grid));
  if (!(ratio > 1.1)) return undefined;
  return { rows: Math.floor(rows / ratio), cols: Math.floor(cols / ratio) };
}

export function anyresLayout(image: Size, pinpoints: Pinpoints, tile: number, grid: number, maxTiles?: number): AnyresLayout {
  const best = selectBestResolution(image, pinpoints);
  const resized = patchOutputSize(image, best);
  const tileRows = best.height / tile;
  const tileCols = best.width / tile;
  const window = unpadWindow(image, tileRows * grid, tileCols * grid);
  const all = Int32Array.from({ length: grid * grid }, (_, i) => i);
  const subImages: SubImage[] = [{ kind: 'overview', row: 0, col: 0, valid: all }];
  for (let row = 0; row < tileRows; row++) {
    for (let col = 0; col < tileCols; col++) {
      const valid: number[] = [];
      for (let p = 0; p < grid * grid; p++) {
        const r = row * grid + Math.floor(p / grid);
        const c = col * grid + (p % grid);
        if (r >= window.rows[0] && r < window.rows[1] && c >= window.cols[0] && c < window.cols[1]) valid.push(p);
      }
      subImages.push({ kind: 'tile', row, col, valid: Int32Array.from(valid) });
    }
  }
  const keptRows = window.rows[1] - window.rows[0];
  const keptCols = window.cols[1] - window.cols[0];
  const downsampled = maxTiles === undefined ? undefined : downsampledGrid(keptRows, keptCols, grid, maxTiles);
  const lines = downsampled ?? { rows: keptRows, cols: keptCols };
  return {
    image,
    best,
    resized,
    padLeft: Math.floor((best.width - resized.width) / 2),
    padTop: Math.floor((best.height - resized.height) / 2),
    tileRows,
    tileCols,
    tile,
    grid,
    rows: window.rows,
    cols: window.cols,
    subImages,
    ...(downsampled ? { downsampled } : {}),
    tokens: grid * grid + lines.rows * (lines.cols + 1),
  };
}
