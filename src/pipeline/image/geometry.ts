/**
 * The geometry of each preprocessing recipe in the terms of src/shared/imageGeometry.ts: where
 * the model's input came from in the user's image (LLaVA-1.5's pad, resize and crop; a
 * LLaVA-NeXT sub-image).
 */
import type { ImageGeometry, Size } from '../../shared/imageGeometry';
import type { AnyresLayout } from './anyres';

/**
 * Sub-image `index` of a LLaVA-NeXT layout (0: the overview, squashed from the whole raster;
 * then the tiles, windows of the raster resized into the grid resolution and padded) in the
 * terms above. The tiles resize before they pad, so their `padded` canvas is stated in raster
 * pixels (fractional): the mapping to the source is the same.
 */
export function subImageGeometry(layout: AnyresLayout, index: number, source: Size): ImageGeometry {
  const raster = layout.image;
  const t = layout.tile;
  if (index === 0) return squashGeometry(source, raster, { width: t, height: t });
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

/** The whole raster resized to `size`, aspect not kept (an anyres overview, SigLIP's processors). */
export function squashGeometry(source: Size, raster: Size, size: Size): ImageGeometry {
  return { source, raster, padded: { ...raster, left: 0, top: 0 }, resized: size, crop: { ...size, left: 0, top: 0 } };
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
