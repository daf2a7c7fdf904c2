/**
 * Image file -> LLaVA-NeXT's pixel_values (1 + tiles, 3, T, T), as transformers' slow
 * LlavaNextImageProcessor makes them: the overview (the whole image squashed to T x T), then the
 * image resized into the best grid resolution keeping its aspect, padded centred with black
 * (raw 0, the odd pixel at the bottom / right), cut into T x T tiles row-major. All resizes are
 * Pillow's bicubic on 8-bit pixels (bicubicResize.ts).
 */
import { AnyresLayout, anyresLayout, Pinpoints } from './anyres';
import { resizeBicubic } from './bicubicResize';
import type { Size } from '../../shared/imageGeometry';
import { decodeImage, normalise, PreprocessOptions } from './preprocess';
import { LLAVA_15_PREPROCESS } from '../../format/preprocessConfig';

export interface AnyresImage {
  /** (subImages, 3, T, T) normalised RGB planes, overview first. */
  readonly pixelValues: Float32Array;
  /** Each sub-image as 8-bit RGB (T, T, 3), in the same order: what the model sees. */
  readonly rgb: readonly Uint8Array[];
  readonly layout: AnyresLayout;
  /** The image as displayed (an SVG's declared size); the layout is in decoded pixels. */
  readonly source: Size;
  readonly format: string;
}

export async function preprocessAnyres(
  input: string | Uint8Array,
  pinpoints: Pinpoints,
  grid: number,
  options: PreprocessOptions & { readonly maxTiles?: number } = {},
): Promise<AnyresImage> {
  const config = options.config ?? LLAVA_15_PREPROCESS;
  const tile = config.cropWidth;
  const decoded = await decodeImage(input, options);
  const { width: w, height: h } = decoded.raster;
  const layout = anyresLayout(decoded.raster, pinpoints, tile, grid, options.maxTiles);
  const overview = resizeBicubic(decoded.rgb, w, h, tile, tile);
  const { resized } = layout;
  const fitted = resizeBicubic(decoded.rgb, w, h, resized.width, resized.height);
  const rgb = [overview];
  for (let row = 0; row < layout.tileRows; row++) {
    for (let col = 0; col < layout.tileCols; col++) {
      rgb.push(cutTile(fitted, resized.width, resized.height, col * tile - layout.padLeft, row * tile - layout.padTop, tile));
    }
  }
  const plane = 3 * tile * tile;
  const pixelValues = new Float32Array(rgb.length * plane);
  rgb.forEach((sub, i) => normalise(sub, config, pixelValues, i * plane));
  return { pixelValues, rgb, layout, source: decoded.source, format: decoded.format };
}

/** The T x T window at (left, top) of the padded canvas: outside the resized image is black. */
function cutTile(rgb: Uint8Array, w: number, h: number, left: number, top: number, tile: number): Uint8Array {
  const out = new Uint8Array(tile * tile * 3);
  for (let y = 0; y < tile; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= h) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(tile, w - left);
    if (x1 > x0) out.set(rgb.subarray((sy * w + left + x0) * 3, (sy * w + left + x1) * 3), (y * tile + x0) * 3);
  }
  return out;
}
