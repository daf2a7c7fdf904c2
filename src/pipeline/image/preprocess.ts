/**
 * Image file -> pixel_values (3, H, W) float32, LLaVA-1.5's recipe with sharp (libvips):
 * orient by EXIF, flatten alpha on white, sRGB 8-bit, pad to a square with the mean colour,
 * resize the short side bicubically, centre-crop, rescale to [0, 1], normalise per channel.
 */
import { messageOf, UserError } from '../../common/errors';
import { readFile, stat } from 'node:fs/promises';
import { decode as decodeBmp } from 'bmp-ts';
import sharp, { type Metadata } from 'sharp';
import { resizeBicubic } from './bicubicResize';
import type { ImageGeometry, Size } from '../../shared/imageGeometry';
import { llavaGeometry, squashGeometry } from './geometry';
import { LLAVA_15_PREPROCESS, PreprocessConfig } from '../../format/preprocessConfig';

/** Default cap on decoded pixels: a 12000 x 12500 photo passes, a decompression bomb does not. */
export const DEFAULT_MAX_INPUT_PIXELS = 150_000_000;

/** Largest input file read into memory. */
export const MAX_INPUT_BYTES = 512 * 1024 * 1024;

/** The padded canvas is never built larger than this many pixels a side (see toModelInput). */
export const MAX_CANVAS_SIDE = 4096;

/** SVGs are rasterised with their long side at this many pixels, whatever size they declare. */
export const SVG_RASTER_LONG_SIDE = 1344;

export type ImageErrorCode = 'not-found' | 'empty' | 'unsupported' | 'truncated' | 'too-large' | 'unreadable';

/** A file that cannot be turned into model input; `message` says what is wrong and what to do. */
export class ImageInputError extends UserError {
  override readonly name = 'ImageInputError';
  constructor(
    readonly code: ImageErrorCode,
    message: string,
    detail?: string,
  ) {
    super(message, detail);
  }
}

export interface PreprocessOptions {
  readonly config?: PreprocessConfig;
  readonly maxInputPixels?: number;
  /** Used in error messages for inputs given as bytes. */
  readonly name?: string;
}

export interface PreprocessedImage {
  /** (3, height, width) normalised RGB planes: HF's pixel_values without the batch axis. */
  readonly pixelValues: Float32Array;
  readonly width: number;
  readonly height: number;
  /** The model input as 8-bit RGB (height, width, 3), before normalisation: what the model sees. */
  readonly rgb: Uint8Array;
  readonly geometry: ImageGeometry;
  /** The decoder's name for the input format: png, jpeg, webp, gif, tiff, heif, svg, bmp. */
  readonly format: string;
}

/** Reads and preprocesses an image file, or bytes already in memory. */
export async function preprocessImage(input: string | Uint8Array, options: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const config = options.config ?? LLAVA_15_PREPROCESS;
  const maxPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const decoded = await decodeImage(input, { ...options, maxInputPixels: maxPixels });
  const name = decoded.name;
  const { rgb, geometry } = config.squash ? squashed(decoded, config) : await padResizeCrop(decoded, config, name);
  return {
    pixelValues: normalise(rgb, config),
    width: config.cropWidth,
    height: config.cropHeight,
    rgb,
    geometry,
    format: decoded.format,
  };
}

/** SigLIP's processors: the whole image resized to the tower's input, aspect not kept. */
function squashed(decoded: DecodedImage, config: PreprocessConfig): { rgb: Uint8Array; geometry: ImageGeometry } {
  const { width: w, height: h } = decoded.raster;
  const size = { width: config.cropWidth, height: config.cropHeight };
  return { rgb: resizeBicubic(decoded.rgb, w, h, size.width, size.height), geometry: squashGeometry(decoded.source, decoded.raster, size) };
}

/** LLaVA-1.5's recipe (and LLaVA-OneVision's low detail): pad to a square, resize, crop. */
async function padResizeCrop(
  decoded: DecodedImage,
  config: PreprocessConfig,
  name: string,
): Promise<{ rgb: Uint8Array; geometry: ImageGeometry }> {
  const geometry = llavaGeometry(decoded.source, decoded.raster, config);
  return { rgb: await toModelInput(decoded, geometry, config, name), geometry };
}

/**
 * The image as the user sees it (EXIF-oriented, alpha on white), scaled to fit `maxSide` x
 * `maxSide`: the canvas the heatmap is drawn on.
 */
export async function decodeForDisplay(
  input: string | Uint8Array,
  maxSide: number,
  options: { maxInputPixels?: number } = {},
): Promise<{ png: Buffer; width: number; height: number }> {
  const decoded = await decodeImage(input, options);
  const { data, info } = await sharp(decoded.rgb, { raw: { width: decoded.raster.width, height: decoded.raster.height, channels: 3 } })
    .resize(maxSide, maxSide, { fit: 'inside', kernel: 'lanczos3' })
    .png()
    .toBuffer({ resolveWithObject: true });
  return { png: data, width: info.width, height: info.height };
}

/** Reads and decodes an image file or bytes: oriented, alpha flattened on white, 8-bit sRGB. */
export async function decodeImage(
  input: string | Uint8Array,
  options: { maxInputPixels?: number; name?: string } = {},
): Promise<DecodedImage & { readonly name: string }> {
  const name = typeof input === 'string' ? input : (options.name ?? 'the image');
  const bytes = typeof input === 'string' ? await readImageFile(input) : input;
  if (bytes.length === 0) throw new ImageInputError('empty', `${name} is empty (0 bytes): choose another image`);
  return { ...(await decodeToRgb(bytes, name, options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS)), name };
}

async function readImageFile(path: string): Promise<Uint8Array> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ImageInputError('unreadable', `${path} is not a file: choose an image file`);
    size = s.size;
  } catch (e) {
    if (e instanceof ImageInputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageInputError('not-found', `${path} does not exist: check the path`);
    throw new ImageInputError('unreadable', `${path} cannot be read: check its permissions`, messageOf(e));
  }
  if (size > MAX_INPUT_BYTES) {
    throw new ImageInputError(
      'too-large',
      `${path} is ${(size / 2 ** 20).toFixed(0)} MiB; images over ${MAX_INPUT_BYTES / 2 ** 20} MiB are refused: downscale it first`,
    );
  }
  try {
    return await readFile(path);
  } catch (e) {
    throw new ImageInputError('unreadable', `${path} cannot be read: check its permissions`, messageOf(e));
  }
}

// ---------------------------------------------------------------------------------------------
// Decode: any supported format -> oriented, flattened, 8-bit sRGB pixels held by libvips.

export interface DecodedImage {
  /** (height, width, 3) oriented 8-bit sRGB, alpha flattened on white. */
  readonly rgb: Buffer;
  readonly source: Size;
  readonly raster: Size;
  readonly format: string;
}

async function decodeToRgb(bytes: Uint8Array, name: string, maxPixels: number): Promise<DecodedImage> {
  if (isBmp(bytes)) return decodeBmpFile(bytes, name, maxPixels);

  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw classify(e, name);
  }
  const format = meta.format === 'heif' && meta.compression === 'av1' ? 'avif' : String(meta.format);
  const declared = orientedSize(meta);
  let density: number | undefined;
  if (meta.format === 'svg') {
    // rasterise at a fixed long side: tiny icons stay sharp, huge declared sizes stay cheap
    density = Math.min(Math.max((72 * SVG_RASTER_LONG_SIDE) / Math.max(declared.width, declared.height, 1), 1), 100_000);
  } else if (declared.width * declared.height > maxPixels) {
    throw tooLarge(name, declared, maxPixels);
  }
  try {
    // only the first frame of an animated GIF or a multi-page TIFF is read (sharp's default)
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, density, failOn: 'truncated' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const raster = { width: info.width, height: info.height };
    if (info.channels !== 3 || data.length !== raster.width * raster.height * 3) {
      throw new ImageInputError('unreadable', `${name} decoded to ${info.channels} channels, expected 8-bit RGB`);
    }
    return { rgb: data, source: meta.format === 'svg' ? declared : raster, raster, format };
  } catch (e) {
    throw e instanceof ImageInputError ? e : classify(e, name);
  }
}

function orientedSize(meta: Metadata): Size {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  return (meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h };
}

function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // "BM"
}

/** libvips as shipped with sharp has no BMP loader: bmp-ts decodes, sharp does the rest. */
async function decodeBmpFile(bytes: Uint8Array, name: string, maxPixels: number): Promise<DecodedImage> {
  if (bytes.length < 26) throw new ImageInputError('truncated', `${name} is a truncated BMP file: re-export or re-download it`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  if (declared.width * declared.height > maxPixels) throw tooLarge(name, declared, maxPixels);
  let decoded: { width: number; height: number; data: Uint8Array; bitPP: number };
  try {
    decoded = decodeBmp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { toRGBA: true });
  } catch (e) {
    throw new ImageInputError('truncated', `${name} is a damaged or truncated BMP file: re-export or re-download it`, messageOf(e));
  }
  const { width, height, data } = decoded;
  if (width < 1 || height < 1 || data.length < width * height * 4) {
    throw new ImageInputError('truncated', `${name} is a damaged or truncated BMP file: re-export or re-download it`);
  }
  // bmp-ts leaves alpha at 0 where the file stores none: only 32-bit files with some alpha use it
  let usesAlpha = false;
  if (decoded.bitPP === 32) for (let i = 3; i < data.length && !usesAlpha; i += 4) usesAlpha = data[i] !== 0;
  if (!usesAlpha) for (let i = 3; i < data.length; i += 4) data[i] = 255;
  const rgba = Buffer.from(data.buffer, data.byteOffset, width * height * 4);
  const rgb = await sharp(rgba, { raw: { width, height, channels: 4 } })
    .flatten({ background: '#ffffff' })
    .removeAlpha()
    .raw()
    .toBuffer();
  const size = { width, height };
  return { rgb, source: size, raster: size, format: 'bmp' };
}

function tooLarge(name: string, size: Size, maxPixels: number): ImageInputError {
  return new ImageInputError(
    'too-large',
    `${name} declares ${size.width} x ${size.height} pixels (${((size.width * size.height) / 1e6).toFixed(1)} MP), over the limit of ${(maxPixels / 1e6).toFixed(0)} MP: downscale it first`,
  );
}

/** Turns libvips' messages into the user's terms. */
function classify(e: unknown, name: string): ImageInputError {
  const msg = messageOf(e);
  if (/unsupported image format/i.test(msg)) {
    return new ImageInputError('unsupported', `${name} is not an image in a supported format (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG)`);
  }
  if (/empty/i.test(msg)) return new ImageInputError('empty', `${name} is empty: choose another image`);
  if (/pixel limit/i.test(msg)) return new ImageInputError('too-large', `${name} has more pixels than the limit: downscale it first`);
  if (/premature|truncat|end of|read error|unexpected end|corrupt|damaged|invalid/i.test(msg)) {
    return new ImageInputError('truncated', `${name} is damaged or truncated: re-export or re-download it`, firstLine(msg));
  }
  return new ImageInputError('unreadable', `${name} could not be read as an image: re-export it as PNG or JPEG`, firstLine(msg));
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

// ---------------------------------------------------------------------------------------------
// Geometry: pad (a canvas filled with int(mean * 255), as LLaVA's expand2square), resize
// (libvips to shrink, bicubicResize.ts to enlarge: see there why), crop.

async function toModelInput(decoded: DecodedImage, g: ImageGeometry, config: PreprocessConfig, name: string): Promise<Uint8Array> {
  try {
    // A very wide or tall image would pad to a huge square (a 49920 x 80 strip: 7.5 GB of RGB).
    // Past MAX_CANVAS_SIDE the raster is first shrunk by the factor the resize would apply
    // anyway, and padded at that scale: the same picture within a pixel, at bounded memory.
    const f = Math.min(1, MAX_CANVAS_SIDE / Math.max(g.padded.width, g.padded.height));
    let raster = { rgb: decoded.rgb as Uint8Array, width: g.raster.width, height: g.raster.height };
    let pad = g.padded;
    if (f < 1) {
      const width = Math.max(1, Math.round(g.raster.width * f));
      const height = Math.max(1, Math.round(g.raster.height * f));
      const rgb = await sharp(decoded.rgb, { raw: { width: g.raster.width, height: g.raster.height, channels: 3 } })
        .resize(width, height, { kernel: 'cubic', fit: 'fill' })
        .raw()
        .toBuffer();
      raster = { rgb, width, height };
      const side = (n: number): number => Math.max(Math.round(n * f), 1);
      const pw = Math.max(side(g.padded.width), width);
      const ph = Math.max(side(g.padded.height), height);
      pad = {
        width: pw,
        height: ph,
        left: Math.min(Math.round(g.padded.left * f), pw - width),
        top: Math.min(Math.round(g.padded.top * f), ph - height),
      };
    }
    let padded: Uint8Array = raster.rgb; // (pad.height, pad.width, 3)
    if (pad.width !== raster.width || pad.height !== raster.height) {
      const [r, gr, b] = config.imageMean.map((m) => Math.trunc(m * 255)) as [number, number, number];
      padded = await sharp(raster.rgb, { raw: { width: raster.width, height: raster.height, channels: 3 } })
        .extend({
          left: pad.left,
          top: pad.top,
          right: pad.width - raster.width - pad.left,
          bottom: pad.height - raster.height - pad.top,
          background: { r, g: gr, b },
        })
        .raw()
        .toBuffer();
    }
    const { width: pw, height: ph } = pad;
    const { width: rw, height: rh } = g.resized;
    let resized: Uint8Array;
    if (rw === pw && rh === ph) resized = padded;
    else if ((rw >= pw && rh >= ph) || config.exactResize) resized = resizeBicubic(padded, pw, ph, rw, rh);
    else {
      resized = await sharp(padded, { raw: { width: pw, height: ph, channels: 3 } })
        .resize(rw, rh, { kernel: 'cubic', fit: 'fill' })
        .raw()
        .toBuffer();
    }
    return centreCrop(resized, g);
  } catch (e) {
    throw e instanceof ImageInputError ? e : classify(e, name);
  }
}

/** The crop window of the resized RGB image; outside the image (crop larger than it) is 0. */
function centreCrop(resized: Uint8Array, g: ImageGeometry): Uint8Array {
  const { width: cw, height: ch, left, top } = g.crop;
  const { width: rw, height: rh } = g.resized;
  if (cw === rw && ch === rh && left === 0 && top === 0) return resized;
  const out = new Uint8Array(cw * ch * 3);
  for (let y = 0; y < ch; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= rh) continue;
    for (let x = 0; x < cw; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= rw) continue;
      const s = (sy * rw + sx) * 3;
      const d = (y * cw + x) * 3;
      out[d] = resized[s]!;
      out[d + 1] = resized[s + 1]!;
      out[d + 2] = resized[s + 2]!;
    }
  }
  return out;
}

/** (H, W, 3) uint8 -> (3, H, W) float32: (v * rescale - mean) / std, into `out` at `offset` when given. */
export function normalise(
  rgb: Uint8Array,
  config: PreprocessConfig,
  out = new Float32Array(3 * config.cropWidth * config.cropHeight),
  offset = 0,
): Float32Array {
  const plane = config.cropWidth * config.cropHeight;
  for (let c = 0; c < 3; c++) {
    const mean = config.imageMean[c]!;
    const std = config.imageStd[c]!;
    // one table per channel: 256 values instead of a division per pixel
    const lut = new Float32Array(256).map((_, v) => (v * config.rescaleFactor - mean) / std);
    for (let p = 0; p < plane; p++) out[offset + c * plane + p] = lut[rgb[p * 3 + c]!]!;
  }
  return out;
}
