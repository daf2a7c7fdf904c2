/**
 * transformers' LLaVA-NeXT image handling restated for tests, from image_processing_llava_next.py
 * (slow processor) and modeling_llava_next.py as docs/llava-next.md describes them: the processor's
 * sub-images (uint8, Pillow bicubic via pilResize.ts), and pack_image_features on float64 rows.
 * Shares no code with src/pipeline.
 */
import { pilBicubicResize } from './pilResize';

type Pair = [number, number]; // (height, width), as the Python code holds sizes

function selectBestResolution(original: Pair, possible: Pair[]): Pair {
  const [oh, ow] = original;
  let best: Pair = possible[0]!;
  let maxEff = 0;
  let minWaste = Number.POSITIVE_INFINITY;
  for (const [h, w] of possible) {
    const scale = Math.min(w / ow, h / oh);
    const dw = Math.floor(ow * scale);
    const dh = Math.floor(oh * scale);
    const eff = Math.min(dw * dh, ow * oh);
    const waste = w * h - eff;
    if (eff > maxEff || (eff === maxEff && waste < minWaste)) {
      maxEff = eff;
      minWaste = waste;
      best = [h, w];
    }
  }
  return best;
}

export interface ReferenceSubImages {
  /** (T, T, 3) uint8 each: the overview, then the tiles row-major. */
  images: Uint8Array[];
  /** (rows, cols) of tiles: get_anyres_image_grid_shape. */
  gridShape: Pair;
}

/** LlavaNextImageProcessor.get_image_patches on an (h, w, 3) uint8 image. */
export function referenceSubImages(rgb: Uint8Array, w: number, h: number, pinpoints: Pair[], tile: number): ReferenceSubImages {
  const [bh, bw] = selectBestResolution([h, w], pinpoints);
  // _resize_for_patching: get_patch_output_size
  let nw: number;
  let nh: number;
  if (bw / w < bh / h) {
    nw = bw;
    nh = Math.min(Math.ceil(h * (bw / w)), bh);
  } else {
    nh = bh;
    nw = Math.min(Math.ceil(w * (bh / h)), bw);
  }
  const resized = pilBicubicResize(rgb, w, h, nw, nh);
  // _pad_for_patching: divmod for the top / left offset, the remainder goes to bottom / right
  const top = Math.floor((bh - nh) / 2);
  const left = Math.floor((bw - nw) / 2);
  const canvas = new Uint8Array(bh * bw * 3);
  for (let y = 0; y < nh; y++)
    for (let x = 0; x < nw; x++) for (let c = 0; c < 3; c++) canvas[((y + top) * bw + x + left) * 3 + c] = resized[(y * nw + x) * 3 + c]!;
  // divide_to_patches: row-major
  const images = [pilBicubicResize(rgb, w, h, tile, tile)];
  for (let ty = 0; ty < bh; ty += tile) {
    for (let tx = 0; tx < bw; tx += tile) {
      const out = new Uint8Array(tile * tile * 3);
      for (let y = 0; y < tile; y++) for (let x = 0; x < tile * 3; x++) out[y * tile * 3 + x] = canvas[(ty + y) * bw * 3 + tx * 3 + x]!;
      images.push(out);
    }
  }
  return { images, gridShape: [bh / tile, bw / tile] };
}

/** Python's round(x, 7). */
function round7(x: number): number {
  return Math.round(x * 1e7) / 1e7;
}

/**
 * pack_image_features for one image: `features[i]` are sub-image i's patch rows (grid^2, CLS
 * dropped), already projected; returns the rows the language model sees, and which tile patches
 * unpadding kept (per tile, raster order).
 */
export function referencePack(
  features: Float64Array[][],
  gridShape: Pair,
  grid: number,
  imageSize: Pair,
  newline: Float64Array,
): { rows: Float64Array[]; kept: number[][] } {
  const [nph, npw] = gridShape;
  const H = nph * grid;
  const W = npw * grid;
  // view(nph, npw, grid, grid, C).permute(4, 0, 2, 1, 3).flatten: position (y, x) of the big grid
  const at = (y: number, x: number): { tile: number; patch: number } => ({
    tile: 1 + Math.floor(y / grid) * npw + Math.floor(x / grid),
    patch: (y % grid) * grid + (x % grid),
  });
  // unpad_image(tensor, (height, width))
  const [oh, ow] = imageSize;
  let ys: number[] = [...Array(H).keys()];
  let xs: number[] = [...Array(W).keys()];
  if (ow / oh > W / H) {
    const newH = Math.trunc(round7(oh * (W / ow)));
    const pad = Math.trunc((H - newH) / 2);
    ys = ys.slice(pad, H - pad);
  } else {
    const newW = Math.trunc(round7(ow * (H / oh)));
    const pad = Math.trunc((W - newW) / 2);
    xs = xs.slice(pad, W - pad);
  }
  const rows: Float64Array[] = [...features[0]!];
  const kept: number[][] = Array.from({ length: nph * npw }, () => []);
  for (const y of ys) {
    for (const x of xs) {
      const { tile, patch } = at(y, x);
      rows.push(features[tile]![patch]!);
      kept[tile - 1]!.push(patch);
    }
    rows.push(newline);
  }
  for (const k of kept) k.sort((a, b) => a - b);
  return { rows, kept };
}

/**
 * LLaVA-OneVision's pack_image_features for one image, from modeling_llava_onevision.py: the
 * tiles' projected rows as one (H, W) grid, unpad_image, then when
 * ratio = sqrt(h * w / (maxTiles * grid^2)) > 1.1, torch's bilinear interpolate (align_corners
 * false) to (int(h // ratio), int(w // ratio)); an image_newline after each row; the overview's
 * rows first, without one.
 */
export function referencePackOnevision(
  features: Float64Array[][],
  gridShape: Pair,
  grid: number,
  imageSize: Pair,
  newline: Float64Array,
  maxTiles: number,
): { rows: Float64Array[]; kept: number[][] } {
  // the unpadded grid and the kept patches, as LLaVA-NeXT's packing finds them (without its newlines)
  const width = features[0]![0]!.length;
  const marker = new Float64Array(width).fill(Number.NaN);
  const { rows: packed, kept } = referencePack(features, gridShape, grid, imageSize, marker);
  const body = packed.slice(grid * grid);
  const lines: Float64Array[][] = [];
  let line: Float64Array[] = [];
  for (const r of body) {
    if (r === marker) {
      lines.push(line);
      line = [];
    } else line.push(r);
  }
  const h = lines.length;
  const w = lines[0]!.length;
  const ratio = Math.sqrt((h * w) / (maxTiles * grid * grid));
  let out = lines;
  if (ratio > 1.1) {
    const oh = Math.floor(h / ratio);
    const ow = Math.floor(w / ratio);
    // upsample_bilinear2d: src = max(scale * (dst + 0.5) - 0.5, 0), scale = in / out
    const coord = (dst: number, inSize: number, outSize: number): [number, number, number] => {
      const src = Math.max((inSize / outSize) * (dst + 0.5) - 0.5, 0);
      const lo = Math.trunc(src);
      const hi = lo < inSize - 1 ? lo + 1 : lo;
      return [lo, hi, src - lo];
    };
    out = [];
    for (let y = 0; y < oh; y++) {
      const [y0, y1, ly] = coord(y, h, oh);
      const row: Float64Array[] = [];
      for (let x = 0; x < ow; x++) {
        const [x0, x1, lx] = coord(x, w, ow);
        const v = new Float64Array(width);
        for (let c = 0; c < width; c++) {
          v[c] =
            (1 - ly) * ((1 - lx) * lines[y0]![x0]![c]! + lx * lines[y0]![x1]![c]!) +
            ly * ((1 - lx) * lines[y1]![x0]![c]! + lx * lines[y1]![x1]![c]!);
        }
        row.push(v);
      }
      out.push(row);
    }
  }
  const rows: Float64Array[] = [...features[0]!];
  for (const r of out) rows.push(...r, newline);
  return { rows, kept };
}
