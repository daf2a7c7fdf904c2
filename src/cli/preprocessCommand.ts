/**
 * `prumerge preprocess`: shows what the vision tower will see of an image (the padded, resized,
 * cropped 336 x 336 input) and where its patch grid falls on the original.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { preprocessImage, PreprocessedImage } from '../pipeline/image/preprocess';
import { LLAVA_15_PREPROCESS, preprocessConfigFromJson, PreprocessConfig } from '../format/preprocessConfig';
import { isPinpoints, Pinpoints } from '../format/visualLayout';
import { preprocessAnyres } from '../pipeline/image/preprocessAnyres';
import { CliError } from './cliError';
import { wholeNumber, writeOut } from './io';

export const PREPROCESS_USAGE = `usage: prumerge preprocess IMAGE [--config preprocessor_config.json] [--out FILE.png] [--grid N] [--json]

Decodes IMAGE (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF, SVG) and applies LLaVA-1.5's preprocessing,
or LLaVA-NeXT's (an overview and tiles) when the config lists image_grid_pinpoints.

  --config FILE   a checkpoint's preprocessor_config.json (default: LLaVA-1.5 / CLIP ViT-L/14-336)
  --out FILE.png  write the model's input image there, with the patch grid drawn over it
  --grid N        patches per side for the drawing and the report (default 24 = 336 / 14)
  --json          one JSON object: format, geometry, per-channel statistics of pixel_values`;

export async function runPreprocess(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      out: { type: 'string' },
      grid: { type: 'string', default: '24' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new CliError('give one IMAGE to preprocess (see prumerge preprocess --help)');
  const image = positionals[0]!;
  const { config, pinpoints } =
    values.config === undefined ? { config: LLAVA_15_PREPROCESS, pinpoints: undefined } : await readConfig(values.config);
  const grid = wholeNumber(values.grid, '--grid', 1, Math.min(config.cropWidth, config.cropHeight));
  if (pinpoints) return preprocessNext(image, config, pinpoints, grid, values);

  const started = process.hrtime.bigint();
  const pre = await preprocessImage(image, { config });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (values.out !== undefined) await writeModelInput(pre, grid, values.out);

  const stats = channelStats(pre);
  if (values.json) {
    await writeOut(
      `${JSON.stringify({ image, format: pre.format, width: pre.width, height: pre.height, geometry: pre.geometry, pixelValues: stats, out: values.out ?? null })}\n`,
    );
    return;
  }
  const g = pre.geometry;
  const lines = [
    `${image}: ${pre.format}, ${g.source.width} x ${g.source.height}${g.raster.width !== g.source.width ? ` (rasterised at ${g.raster.width} x ${g.raster.height})` : ''}`,
    g.padded.width !== g.raster.width || g.padded.height !== g.raster.height
      ? `padded to ${g.padded.width} x ${g.padded.height} with the mean colour (image at x ${g.padded.left}, y ${g.padded.top})`
      : 'no padding needed',
    `resized to ${g.resized.width} x ${g.resized.height}, cropped to ${pre.width} x ${pre.height} at (${g.crop.left}, ${g.crop.top}): ${grid} x ${grid} patches of ${(pre.width / grid).toFixed(1)} px`,
    `pixel_values [1, 3, ${pre.height}, ${pre.width}] mean ${stats.map((s) => s.mean.toFixed(3)).join(' / ')} in ${ms.toFixed(0)} ms`,
  ];
  if (values.out !== undefined) lines.push(`wrote ${values.out}`);
  await writeOut(`${lines.join('\n')}\n`);
}

/** LLaVA-NeXT: the layout in words, and with --out the overview beside the tiles as they were cut. */
async function preprocessNext(
  image: string,
  config: PreprocessConfig,
  pinpoints: Pinpoints,
  grid: number,
  values: { out?: string; json: boolean },
): Promise<void> {
  const pre = await preprocessAnyres(image, pinpoints, grid, { config });
  const { layout: l } = pre;
  const tile = config.cropWidth;
  if (values.out !== undefined) {
    const gap = 8;
    const tiles = pre.rgb.slice(1).map((rgb, i) => ({
      input: Buffer.from(rgb),
      raw: { width: tile, height: tile, channels: 3 as const },
      left: tile + gap + (i % l.tileCols) * tile,
      top: Math.floor(i / l.tileCols) * tile,
    }));
    await sharp({ create: { width: tile * (1 + l.tileCols) + gap, height: tile * l.tileRows, channels: 3, background: '#808080' } })
      .composite([{ input: Buffer.from(pre.rgb[0]!), raw: { width: tile, height: tile, channels: 3 }, left: 0, top: 0 }, ...tiles])
      .png()
      .toFile(values.out)
      .catch((e: Error) => {
        throw new CliError(`cannot write ${values.out}: ${e.message}`);
      });
  }
  if (values.json) {
    const { subImages, ...layout } = l;
    await writeOut(`${JSON.stringify({ image, format: pre.format, layout, subImages: subImages.length, out: values.out ?? null })}\n`);
    return;
  }
  const lines = [
    `${image}: ${pre.format}, ${l.image.width} x ${l.image.height}; LLaVA-NeXT: an overview (squashed to ${tile} x ${tile}) and ${l.tileRows} x ${l.tileCols} tiles`,
    `grid ${l.best.width} x ${l.best.height}: resized to ${l.resized.width} x ${l.resized.height}, padded with black at (${l.padLeft}, ${l.padTop})`,
    `${l.tokens} visual tokens without reduction (patch rows ${l.rows[0]}..${l.rows[1] - 1}, columns ${l.cols[0]}..${l.cols[1] - 1} of the tiles' ${l.tileRows * grid} x ${l.tileCols * grid} kept by unpadding, a newline row after each)`,
  ];
  if (values.out !== undefined) lines.push(`wrote ${values.out} (the overview, then the tiles)`);
  await writeOut(`${lines.join('\n')}\n`);
}

async function readConfig(path: string): Promise<{ config: PreprocessConfig; pinpoints: Pinpoints | undefined }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const json = JSON.parse(text) as { image_grid_pinpoints?: unknown };
    const config = preprocessConfigFromJson(json);
    return {
      config,
      pinpoints: json.image_grid_pinpoints === undefined ? undefined : pinpointsOf(json.image_grid_pinpoints, config.cropWidth),
    };
  } catch (e) {
    throw new CliError(e instanceof SyntaxError ? `${path} is not valid JSON (${e.message})` : (e as Error).message);
  }
}

function pinpointsOf(v: unknown, tile: number): Pinpoints {
  if (!isPinpoints(v, tile))
    throw new CliError(`image_grid_pinpoints must be a list of [height, width] pairs, each a multiple of ${tile} pixels`);
  return v;
}
function channelStats(pre: PreprocessedImage): { mean: number; min: number; max: number }[] {
  const plane = pre.width * pre.height;
  return [0, 1, 2].map((c) => {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let p = c * plane; p < (c + 1) * plane; p++) {
      const v = pre.pixelValues[p]!;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return { mean: sum / plane, min, max };
  });
}

/** The model input, twice the size for legibility, with the patch grid in thin grey lines. */
async function writeModelInput(pre: PreprocessedImage, grid: number, out: string): Promise<void> {
  const scale = 2;
  const w = pre.width * scale;
  const h = pre.height * scale;
  const big = await sharp(pre.rgb, { raw: { width: pre.width, height: pre.height, channels: 3 } })
    .resize(w, h, { kernel: 'nearest' })
    .raw()
    .toBuffer();
  for (let k = 1; k < grid; k++) {
    const x = Math.round((k * w) / grid);
    const y = Math.round((k * h) / grid);
    for (let t = 0; t < h; t++) big.fill(128, (t * w + x) * 3, (t * w + x) * 3 + 3);
    big.fill(128, y * w * 3, (y + 1) * w * 3);
  }
  try {
    await sharp(big, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(out);
  } catch (e) {
    throw new CliError(`cannot write ${out}: ${(e as Error).message}`);
  }
}
