/**
 * Where each pixel of the model's input came from in the user's image, so that a patch of the
 * vision tower's grid can be drawn back onto the image as the user sees it.
 *
 *   source (as displayed) --raster--> decoded pixels --pad--> square canvas
 *     --resize--> resized --crop--> model input (cropWidth x cropHeight)
 */
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
 * model input (of its first `coverage` share, from the top left), clipped to the image;
 * `undefined` when the patch lies wholly in padding.
 */
export function patchBox(g: ImageGeometry, index: number, grid: number, coverage = 1): Box | undefined {
  const row = Math.floor(index / grid);
  const col = index % grid;
  const w = (g.crop.width * coverage) / grid;
  const h = (g.crop.height * coverage) / grid;
  const a = modelToSource(g, col * w, row * h);
  const b = modelToSource(g, (col + 1) * w, (row + 1) * h);
  const box = {
    left: Math.max(a.x, 0),
    top: Math.max(a.y, 0),
    right: Math.min(b.x, g.source.width),
    bottom: Math.min(b.y, g.source.height),
  };
  return box.right > box.left && box.bottom > box.top ? box : undefined;
}

/**
 * The whole factor that draws an image at least `minSide` pixels on its longer side: 1 for one large
 * enough. Whole, and drawn nearest-neighbour, so that a 4 x 4 icon shows its 16 pixels, not a blur.
 */
export function pixelScale(size: Size, minSide: number): number {
  const longest = Math.max(size.width, size.height);
  return longest > 0 && longest < minSide ? Math.floor(minSide / longest) : 1;
}
