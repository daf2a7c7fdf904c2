/**
 * The image preprocessing numbers: LLaVA-1.5's defaults, or what a checkpoint's
 * preprocessor_config.json says (CLIPImageProcessor / LlavaImageProcessor field names).
 */
import { UserError } from '../common/errors';

export type Rgb = readonly [number, number, number];

export interface PreprocessConfig {
  /** Shortest edge after the resize (size.shortest_edge). */
  readonly shortestEdge: number;
  /** Centre crop (crop_size); equal to shortestEdge x shortestEdge for CLIP. */
  readonly cropWidth: number;
  readonly cropHeight: number;
  /** Per channel, applied to pixel * rescaleFactor. */
  readonly imageMean: Rgb;
  readonly imageStd: Rgb;
  readonly rescaleFactor: number;
  /** LLaVA-1.5's expand2square: pad to a square with the mean colour before resizing. */
  readonly padToSquare: boolean;
  /**
   * SigLIP's processors: resize the whole image to crop width x height, aspect not kept, no pad
   * and no crop (size given as height and width). Absent: false.
   */
  readonly squash?: boolean;
  /** Resize with Pillow's bicubic when shrinking too (bicubicResize.ts), not libvips' near match. Absent: false. */
  readonly exactResize?: boolean;
}

/** CLIP ViT-L/14-336 as LLaVA-1.5 preprocesses for it. */
export const LLAVA_15_PREPROCESS: PreprocessConfig = {
  shortestEdge: 336,
  cropWidth: 336,
  cropHeight: 336,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
  rescaleFactor: 1 / 255,
  padToSquare: true,
};

/** LLaVA-1.5's preprocessing for a CLIP tower of another input size: what a checkpoint without a preprocessor_config.json gets. */
export function clipPreprocess(imageSize: number): PreprocessConfig {
  return { ...LLAVA_15_PREPROCESS, shortestEdge: imageSize, cropWidth: imageSize, cropHeight: imageSize };
}

/** SiglipImageProcessor's numbers: squashed to the tower's size, mean and std 0.5. */
export function siglipPreprocess(imageSize: number): PreprocessConfig {
  return {
    shortestEdge: imageSize,
    cropWidth: imageSize,
    cropHeight: imageSize,
    imageMean: [0.5, 0.5, 0.5],
    imageStd: [0.5, 0.5, 0.5],
    rescaleFactor: 1 / 255,
    padToSquare: false,
    squash: true,
  };
}

export class PreprocessConfigError extends UserError {
  override readonly name = 'PreprocessConfigError';
}

/**
 * Reads a parsed preprocessor_config.json. Fields that are absent keep LLaVA-1.5's values;
 * `do_pad` (LlavaImageProcessor) turns the square padding off or on, and defaults to on because
 * LLaVA-1.5 was trained with it even where the hub's CLIPImageProcessor config omits it.
 */
export function preprocessConfigFromJson(json: unknown): PreprocessConfig {
  if (!isRecord(json)) throw new PreprocessConfigError('preprocessor_config.json must hold a JSON object');
  const base = LLAVA_15_PREPROCESS;
  const size = json['size'];
  let shortestEdge = base.shortestEdge;
  // size as height and width (SigLIP's and LLaVA-OneVision's processors): a plain resize to it
  const squash = isRecord(size) && size['shortest_edge'] === undefined && size['height'] !== undefined && size['width'] !== undefined;
  if (typeof size === 'number') shortestEdge = size;
  else if (isRecord(size))
    shortestEdge = numberField(size, 'shortest_edge', undefined, 'size') ?? numberField(size, 'height', base.shortestEdge, 'size')!;
  const crop = squash ? undefined : json['crop_size'];
  let cropWidth = squash ? numberField(size, 'width', shortestEdge, 'size')! : shortestEdge;
  let cropHeight = shortestEdge;
  if (typeof crop === 'number') cropWidth = cropHeight = crop;
  else if (isRecord(crop)) {
    cropWidth = numberField(crop, 'width', shortestEdge, 'crop_size')!;
    cropHeight = numberField(crop, 'height', shortestEdge, 'crop_size')!;
  }
  for (const [name, v] of [
    ['size.shortest_edge', shortestEdge],
    ['crop_size.width', cropWidth],
    ['crop_size.height', cropHeight],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 4096) {
      throw new PreprocessConfigError(`preprocessor_config.json: ${name} must be a whole number of pixels in 1..4096, got ${v}`);
    }
  }
  const config: PreprocessConfig = {
    shortestEdge,
    cropWidth,
    cropHeight,
    imageMean: rgbField(json, 'image_mean', base.imageMean),
    imageStd: rgbField(json, 'image_std', base.imageStd),
    rescaleFactor: numberField(json, 'rescale_factor', base.rescaleFactor, '')!,
    padToSquare: squash ? false : json['do_pad'] === undefined ? base.padToSquare : json['do_pad'] === true,
    ...(squash ? { squash } : {}),
  };
  if (config.imageStd.some((s) => s <= 0)) {
    throw new PreprocessConfigError('preprocessor_config.json: image_std values must be > 0');
  }
  return config;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numberField(obj: Record<string, unknown>, key: string, fallback: number | undefined, where: string): number | undefined {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new PreprocessConfigError(`preprocessor_config.json: ${where ? `${where}.` : ''}${key} must be a number`);
  }
  return v;
}

function rgbField(obj: Record<string, unknown>, key: string, fallback: Rgb): Rgb {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v === 'number' && Number.isFinite(v)) return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return [v[0], v[1], v[2]] as Rgb;
  }
  throw new PreprocessConfigError(`preprocessor_config.json: ${key} must be a number or a list of 3 numbers`);
}
