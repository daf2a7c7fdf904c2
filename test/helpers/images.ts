/** Test images: seeded noise PNGs, and PNGs decoded to RGB as the references read them. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { SeededRandom } from '../../src/common/random';
import { scratchDir } from './checkpoints';

/** A PNG of seeded noise over a gradient: every pixel differs, so a misplaced pixel shows. */
export async function noisePng(width: number, height: number, seed: number): Promise<string> {
  const rng = new SeededRandom(seed);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.min(255, Math.floor(((i / 3) % width) / (width / 128) + rng.uniform() * 128));
  const path = join(scratchDir('img'), `noise-${width}x${height}.png`);
  writeFileSync(
    path,
    await sharp(rgb, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
  );
  return path;
}

export async function decodePng(path: string): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data), width: info.width, height: info.height };
}
