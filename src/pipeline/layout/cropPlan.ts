/** The crops a reading sends to the vision tower, each with where it came from in the user's image. */
import type { ImageGeometry, Size } from '../../shared/imageGeometry';
import type { SubImageKind } from '../../shared/results';
import { AnyresLayout, anyresLayout } from '../image/anyres';
import { subImageGeometry } from '../image/geometry';
import { decodeImage, preprocessImage } from '../image/preprocess';
import { preprocessAnyres } from '../image/preprocessAnyres';
import type { Reading } from './reading';

export type Image = string | Uint8Array;

export interface Crop {
  readonly kind: SubImageKind;
  /** Tile row and column (0, 0 for a single crop and the overview). */
  readonly row: number;
  readonly col: number;
  /** (3, T, T) the tower's input. */
  readonly pixels: Float32Array;
  /** Its patches the rows come from (unpadding drops a tile's padding; all for a single crop and the overview). */
  readonly valid: Int32Array;
  readonly geometry: ImageGeometry;
}

export interface CropPlan {
  readonly crops: readonly Crop[];
  /** The tiles reading's layout. */
  readonly tiles?: AnyresLayout;
  /** Visual rows without reduction. */
  readonly tokens: number;
}

export async function planCrops(reading: Reading, image: Image, grid: number): Promise<CropPlan> {
  if (reading.kind !== 'tiles') {
    const pre = await preprocessImage(image, { config: reading.config });
    const valid = Int32Array.from({ length: grid * grid }, (_, i) => i);
    const crop: Crop = { kind: 'overview', row: 0, col: 0, pixels: pre.pixelValues, valid, geometry: pre.geometry };
    return { crops: [crop], tokens: unreducedSingle(reading, grid) };
  }
  const pre = await preprocessAnyres(image, reading.pinpoints, grid, {
    config: reading.config,
    ...(reading.maxTiles !== undefined ? { maxTiles: reading.maxTiles } : {}),
  });
  const { layout, pixelValues, source } = pre;
  const plane = pixelValues.length / layout.subImages.length;
  const crops = layout.subImages.map((sub, i) => ({
    ...sub,
    pixels: pixelValues.subarray(i * plane, (i + 1) * plane),
    geometry: subImageGeometry(layout, i, source),
  }));
  return { crops, tiles: layout, tokens: layout.tokens };
}

/** Visual rows without reduction and the crops the tower reads, from the image's size alone (no resize, no tower). */
export function countRows(reading: Reading, grid: number, raster: Size | undefined): { total: number; subImages: number } {
  if (reading.kind !== 'tiles') return { total: unreducedSingle(reading, grid), subImages: 1 };
  if (!raster) throw new Error('a tiles reading is counted from the image size');
  const layout = anyresLayout(raster, reading.pinpoints, reading.config.cropWidth, grid, reading.maxTiles);
  return { total: layout.tokens, subImages: layout.subImages.length };
}

/** The decoded size countRows needs, read only for a tiles reading. */
export async function rasterFor(reading: Reading, image: Image): Promise<Size | undefined> {
  return reading.kind === 'tiles' ? (await decodeImage(image)).raster : undefined;
}

function unreducedSingle(reading: Reading, grid: number): number {
  return grid * grid + (reading.kind === 'paddedCrop' ? 1 : 0);
}
