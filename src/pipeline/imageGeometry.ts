/**
 * Where each pixel of the model's input came from in the user's image, so that a patch of the
 * vision tower's grid can be drawn back onto the image as the user sees it.
 *
 *   source (as displayed) --raster--> decoded pixels --pad--> square canvas
 *     --resize--> resized --crop--> model input (cropWidth x cropHeight)
 */
import type { AnyresLayout } from './anyres';

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface Box {
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

export interface ImageGeometry {
  /** The image as displayed: pixels after EXIF orientation; an SVG's declared size. */
  readonly source: Size;
  /** The decoded pixels (differs from `source` only for a rasterised SVG). */
  readonly raster: Size;
  /** The canvas after padding, and where the raster sits on it. */
  readonly padded: Size & { readonly left: number; readonly top: number };
  readonly resized: Size;
  /** The model input, a window of the resized canvas. */
  readonly crop: Size & { readonly left: number; readonly top: number };
}

/** Maps a point of the model input (crop coordinates, pixel edges) to source coordinates. */
export function modelToSource(g: ImageGeometry, x: number, y: number): { x: number; y: number } {
  const px = ((x + g.crop.left) * g.padded.width) / g.resized.width - g.padded.left;
  const py = ((y + g.crop.top) * g.padded.height) / g.resized.height - g.padded.top;
  return { x: (px * g.source.width) / g.raster.width, y: (py * g.source.height) / g.raster.height };
}

/**
 * The source-image box covered by patch `index` (raster order) of a `grid` x `grid` tiling of the
 * model input, clipped to the image; `undefined` when the patch lies wholly in padding.
 */
export function patchBox(g: ImageGeometry, index: number, grid: number): Box | undefined {
  const row = Math.floor(index / grid);
  const col = index % grid;
  const a = modelToSource(g, (col * g.crop.width) / grid, (row * g.crop.height) / grid);
  const b = modelToSource(g, ((col + 1) * g.crop.width) / grid, ((row + 1) * g.crop.height) / grid);
  const box = {
    left: Math.max(a.x, 0),
    top: Math.max(a.y, 0),
    right: Math.min(b.x, g.source.width),
    bottom: Math.min(b.y, g.source.height),
  };
  return box.right > box.left && box.bottom > box.top ? box : undefined;
}

/**
 * Sub-image `index` of a LLaVA-NeXT layout (0: the overview, squashed from the whole raster;
 * then the tiles, windows of the raster resized into the grid resolution and padded) in the
 * terms above. The tiles resize before they pad, so their `padded` canvas is stated in raster
 * pixels (fractional): the mapping to the source is the same.
 */
export function subImageGeometry(layout: AnyresLayout, index: number, source: Size): ImageGeometry {
  const raster = layout.image;
  const t = layout.tile;
  if (index === 0) {
    return {
      source,
      raster,
      padded: { ...raster, left: 0, top: 0 },
      resized: { width: t, height: t },
      crop: { width: t, height: t, left: 0, top: 0 },
    };
  }
  const sub = layout.subImages[index]!;
  const sx = raster.width / layout.resized.width;
  const sy = raster.height / layout.resized.height;
  return {
    source,
    raster,
    padded: { width: layout.best.width * sx, height: layout.best.height * sy, left: layout.padLeft * sx, top: layout.padTop * sy },
    resized: layout.best,
    crop: { width: t, height: t, left: sub.col * t, top: sub.row * t },
  };
}

/**
 * The geometry of LLaVA's preprocessing for a raster of `width` x `height`: expand2square pastes
 * the image at ((S - w) // 2, 0) or (0, (S - h) // 2); the resize takes the short side to
 * `shortestEdge` and the long side to int(shortestEdge * long / short); the crop is centred at
 * ((W - cw) // 2, (H - ch) // 2) as transformers' center_crop does.
 */
export function llavaGeometry(
  source: Size,
  raster: Size,
  options: { padToSquare: boolean; shortestEdge: number; cropWidth: number; cropHeight: number },
): ImageGeometry {
  const { width: w, height: h } = raster;
  let padded = { width: w, height: h, left: 0, top: 0 };
  if (options.padToSquare && w !== h) {
    const s = Math.max(w, h);
    padded = { width: s, height: s, left: Math.floor((s - w) / 2), top: Math.floor((s - h) / 2) };
  }
  const short = Math.min(padded.width, padded.height);
  const long = Math.max(padded.width, padded.height);
  const resizedLong = Math.max(Math.trunc((options.shortestEdge * long) / short), 1);
  const resized =
    padded.width <= padded.height
      ? { width: options.shortestEdge, height: resizedLong }
      : { width: resizedLong, height: options.shortestEdge };
  const crop = {
    width: options.cropWidth,
    height: options.cropHeight,
    left: Math.floor((resized.width - options.cropWidth) / 2),
    top: Math.floor((resized.height - options.cropHeight) / 2),
  };
  return { source, raster, padded, resized, crop };
}
