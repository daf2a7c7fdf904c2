/**
 * Bounded fuzzing of the two parsers that take files from outside: images (sharp / libvips,
 * bmp-ts, our pipeline; PNG, JPEG, GIF, WebP, TIFF, SVG and BMP seeds) and safetensors headers. Mutated inputs must either work or fail with
 * the module's own error (ImageInputError, CheckpointError); anything else, a hang, or a crash of
 * this process is a finding. Run: node --import tsx scripts/fuzz.ts [--seconds 60] [--seed 1]
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encode as encodeBmp } from 'bmp-ts';
import sharp from 'sharp';
import { CheckpointError, readSafetensorsHeader } from '../src/checkpoint/safetensors';
import { writeSafetensors } from '../src/checkpoint/safetensorsWriter';
import { SeededRandom } from '../src/common/random';
import { ImageInputError, preprocessImage } from '../src/pipeline/image/preprocess';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    formats: { type: 'string', default: 'png,jpeg,gif,webp,tiff,svg,bmp' },
  },
});
const rng = new SeededRandom(Number(values.seed));
const deadline = Date.now() + Number(values.seconds) * 1000;
const dir = mkdtempSync(join(tmpdir(), 'prumerge-fuzz-'));
console.log(`inputs under test are written to ${dir}`);
const HANG_MS = 10_000;
if (process.env['FUZZ_SHARP_CACHE_OFF']) sharp.cache(false);
if (process.env['FUZZ_SHARP_THREADS']) sharp.concurrency(Number(process.env['FUZZ_SHARP_THREADS']));

function mutate(bytes: Uint8Array): Uint8Array {
  const out = Buffer.from(bytes);
  switch (rng.int(4)) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + rng.int(8); i < n; i++) out[rng.int(out.length)] = rng.int(256);
      return out;
    case 1: // truncate
      return out.subarray(0, rng.int(out.length));
    case 2: // overwrite a 4-byte field with an extreme value
      out.writeUInt32BE(
        [0, 1, 0x7fffffff, 0xffffffff, 50000][rng.int(5)]!,
        Math.min(rng.int(Math.max(out.length - 4, 1)), Math.max(out.length - 4, 0)),
      );
      return out;
    default: // splice random bytes in
      return Buffer.concat([
        out.subarray(0, rng.int(out.length)),
        Buffer.from(Array.from({ length: 1 + rng.int(64) }, () => rng.int(256))),
        out.subarray(rng.int(out.length)),
      ]);
  }
}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('HANG')), HANG_MS).unref())]);
}

async function main(): Promise<void> {
  const base = sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } });
  const all: [string, Uint8Array][] = [
    ['png', await base.clone().png().toBuffer()],
    ['jpeg', await base.clone().jpeg().toBuffer()],
    ['gif', await base.clone().gif().toBuffer()],
    ['webp', await base.clone().webp().toBuffer()],
    ['tiff', await base.clone().tiff().toBuffer()],
    ['bmp', encodeBmp({ width: 40, height: 30, bitPP: 24, data: Buffer.alloc(40 * 30 * 4, 0x80) }).data],
    ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="#36c"/></svg>')],
  ];
  const seeds = all.filter(([f]) => values.formats.split(',').includes(f));
  const st = join(dir, 'seed.safetensors');
  await writeSafetensors(st, [
    { name: 'a.weight', shape: [4, 3], data: new Float32Array(12) },
    { name: 'b.bias', shape: [3], data: new Float32Array(3) },
  ]);
  const stBytes = new Uint8Array(readFileSync(st));

  const counts = { images: 0, imageErrors: 0, headers: 0, headerErrors: 0 };
  const findings: string[] = [];
  while (Date.now() < deadline) {
    const [format, bytes] = seeds[rng.int(seeds.length)]!;
    const input = mutate(bytes);
    counts.images++;
    // the input under test is on disk first: if libvips takes the process down, it is kept
    writeFileSync(join(dir, `last-input.${format}`), input);
    writeFileSync(join(dir, 'last-format'), format);
    try {
      await withTimeout(preprocessImage(input, { name: `fuzz.${format}` }));
    } catch (e) {
      if (e instanceof ImageInputError) counts.imageErrors++;
      else findings.push(`${format}: ${(e as Error).message}`);
    }
    const file = join(dir, 'm.safetensors');
    writeFileSync(file, mutate(stBytes));
    counts.headers++;
    try {
      await withTimeout(readSafetensorsHeader(file));
    } catch (e) {
      if (e instanceof CheckpointError) counts.headerErrors++;
      else findings.push(`safetensors: ${(e as Error).message}`);
    }
  }
  console.log(
    `${counts.images} mutated images (${counts.imageErrors} refused with ImageInputError), ${counts.headers} mutated safetensors files (${counts.headerErrors} refused with CheckpointError)`,
  );
  console.log(
    findings.length ? `findings:\n${[...new Set(findings)].slice(0, 20).join('\n')}` : 'no findings: no other error, no hang, no crash',
  );
  process.exitCode = findings.length ? 1 : 0;
}

void main();
