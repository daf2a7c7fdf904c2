import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, it } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { SeededRandom } from '../../../../src/common/random';
import { llavaGeometry } from '../../../../src/pipeline/image/geometry';
import { patchBox } from '../../../../src/shared/imageGeometry';
import { ImageInputError, preprocessImage } from '../../../../src/pipeline/image/preprocess';
import { LLAVA_15_PREPROCESS, preprocessConfigFromJson, PreprocessConfigError } from '../../../../src/format/preprocessConfig';
import { pilBicubicResize } from '../../../reference/pilResize';

const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
const SIDE = 336;
const PLANE = SIDE * SIDE;
/** LLaVA's expand2square colour: tuple(int(x * 255) for x in image_mean). */
const PAD = [122, 116, 104];

const tmp = mkdtempSync(join(tmpdir(), 'prumerge-preprocess-'));

function normalised(v: number, c: number): number {
  return Math.fround((v / 255 - MEAN[c]!) / STD[c]!);
}

function solid(width: number, height: number, rgb: [number, number, number], channels: 3 | 4 = 3): Sharp {
  return sharp({ create: { width, height, channels, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha: channels === 4 ? 0 : 1 } } });
}

/** Model-input pixel (x, y) of channel c, back in 0..255. */
function pixel(rgb: Uint8Array, x: number, y: number, c: number): number {
  return rgb[(y * SIDE + x) * 3 + c]!;
}

/** A 24-bit BMP written byte by byte: BITMAPINFOHEADER, rows bottom-up, padded to 4 bytes. */
function bmp24(width: number, height: number, colourAt: (x: number, y: number) => [number, number, number]): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + rowBytes * height);
  buf.write('BM', 0, 'ascii');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(rowBytes * height, 34);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colourAt(x, y);
      buf[row + x * 3] = b;
      buf[row + x * 3 + 1] = g;
      buf[row + x * 3 + 2] = r;
    }
  }
  return buf;
}

/** A PNG whose IHDR declares width x height (CRC fixed up), with the original tiny image data. */
async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await solid(4, 4, [1, 2, 3]).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

describe('image preprocessing: LLaVA-1.5 recipe', () => {
  it('normalises every pixel to (v / 255 - mean) / std', async () => {
    const png = await solid(SIDE, SIDE, [200, 100, 50]).png().toBuffer();
    const out = await preprocessImage(png);
    assert.equal(out.pixelValues.length, 3 * PLANE);
    const expected = [normalised(200, 0), normalised(100, 1), normalised(50, 2)];
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < PLANE; p += 997) assert.ok(Math.abs(out.pixelValues[c * PLANE + p]! - expected[c]!) < 1e-6);
    }
  });

  it('pads a wide image above and below with int(mean * 255), then resizes to 336', async () => {
    // 200 x 100 -> 200 x 200 canvas with the image at rows 50..149 -> model rows 84..251
    const out = await preprocessImage(await solid(200, 100, [255, 0, 0]).png().toBuffer());
    assert.deepEqual(out.geometry.padded, { width: 200, height: 200, left: 0, top: 50 });
    for (const y of [0, 40, 78, 258, 300, 335]) {
      for (let c = 0; c < 3; c++) assert.equal(pixel(out.rgb, 100, y, c), PAD[c], `pad row ${y}`);
    }
    for (const y of [90, 168, 245])
      assert.deepEqual(
        [0, 1, 2].map((c) => pixel(out.rgb, 17, y, c)),
        [255, 0, 0],
      );
    assert.ok(Math.abs(out.pixelValues[0 * PLANE + 0]! - normalised(122, 0)) < 1e-6);
  });

  it('pads a tall image left and right', async () => {
    const out = await preprocessImage(await solid(100, 200, [0, 255, 0]).png().toBuffer());
    assert.deepEqual(out.geometry.padded, { width: 200, height: 200, left: 50, top: 0 });
    for (const x of [0, 78, 258, 335]) assert.equal(pixel(out.rgb, x, 100, 1), PAD[1]);
    for (const x of [90, 245])
      assert.deepEqual(
        [0, 1, 2].map((c) => pixel(out.rgb, x, 100, c)),
        [0, 255, 0],
      );
  });

  it('enlarges small images as Pillow BICUBIC does (within 1 level)', async () => {
    const rng = new SeededRandom(7);
    const w = 60;
    const h = 60;
    const raw = new Uint8Array(w * h * 3).map(() => rng.int(256));
    const out = await preprocessImage(
      await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const ref = pilBicubicResize(raw, w, h, SIDE, SIDE);
    let max = 0;
    for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]! - out.rgb[i]!));
    assert.ok(max <= 1, `max difference ${max}`);
  });

  it('shrinks large images close to Pillow BICUBIC (mean < 0.5, max <= 4 levels)', async () => {
    const w = 700;
    const h = 700;
    const rng = new SeededRandom(8);
    const raw = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          raw[(y * w + x) * 3 + c] = Math.max(
            0,
            Math.min(255, Math.round(128 + 80 * Math.sin(x / (9 + c)) * Math.cos(y / 13) + 15 * rng.normal())),
          );
        }
      }
    }
    const out = await preprocessImage(
      await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const ref = pilBicubicResize(raw, w, h, SIDE, SIDE);
    let max = 0;
    let sum = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(ref[i]! - out.rgb[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    assert.ok(sum / ref.length < 0.5, `mean difference ${sum / ref.length}`);
    assert.ok(max <= 4, `max difference ${max}`);
  });

  it('without padding, resizes the short side and centre-crops', async () => {
    const config = { ...LLAVA_15_PREPROCESS, padToSquare: false };
    // left third red, middle blue, right third green: 672 x 336 -> 336 high, 672 wide, crop x 168..504
    const raw = new Uint8Array(672 * 336 * 3);
    for (let y = 0; y < 336; y++) {
      for (let x = 0; x < 672; x++) raw[(y * 672 + x) * 3 + (x < 224 ? 0 : x < 448 ? 2 : 1)] = 255;
    }
    const out = await preprocessImage(
      await sharp(raw, { raw: { width: 672, height: 336, channels: 3 } })
        .png()
        .toBuffer(),
      { config },
    );
    assert.deepEqual(out.geometry.crop, { width: 336, height: 336, left: 168, top: 0 });
    assert.deepEqual(
      [0, 1, 2].map((c) => pixel(out.rgb, 168, 100, c)),
      [0, 0, 255],
    ); // x 336 of the original
    assert.deepEqual(
      [0, 1, 2].map((c) => pixel(out.rgb, 0, 100, c)),
      [255, 0, 0],
    ); // x 168
    assert.deepEqual(
      [0, 1, 2].map((c) => pixel(out.rgb, 335, 100, c)),
      [0, 255, 0],
    ); // x 503
  });
});

describe('image preprocessing: formats', () => {
  const colour: [number, number, number] = [40, 160, 220];
  const encoders: [string, () => Promise<Buffer>, number][] = [
    ['png', () => solid(64, 48, colour).png().toBuffer(), 0],
    ['jpeg', () => solid(64, 48, colour).jpeg({ quality: 95 }).toBuffer(), 4],
    ['webp', () => solid(64, 48, colour).webp({ lossless: true }).toBuffer(), 0],
    ['gif', () => solid(64, 48, colour).gif().toBuffer(), 4],
    ['tiff', () => solid(64, 48, colour).tiff().toBuffer(), 0],
    ['avif', () => solid(64, 48, colour).avif({ quality: 90 }).toBuffer(), 6],
    ['bmp', async () => bmp24(64, 48, () => colour), 0],
    [
      'svg',
      async () =>
        Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48" fill="rgb(${colour.join(',')})"/></svg>`,
        ),
      1,
    ],
  ];
  for (const [format, encode, tolerance] of encoders) {
    it(`reads ${format}`, async () => {
      const out = await preprocessImage(await encode());
      assert.equal(out.format, format);
      assert.deepEqual(out.geometry.source, { width: 64, height: 48 });
      for (let c = 0; c < 3; c++) {
        const v = pixel(out.rgb, 168, 168, c);
        assert.ok(Math.abs(v - colour[c]!) <= tolerance, `${format} channel ${c}: ${v} vs ${colour[c]}`);
      }
    });
  }

  it('reads a BMP pixel by pixel in the right orientation', async () => {
    // top half white, bottom half black: 336 x 336, so the model input is the BMP itself
    const out = await preprocessImage(bmp24(SIDE, SIDE, (_, y) => (y < 168 ? [255, 255, 255] : [0, 0, 0])));
    assert.equal(pixel(out.rgb, 10, 0, 0), 255);
    assert.equal(pixel(out.rgb, 10, 335, 0), 0);
  });

  it('takes the first frame of an animated GIF', async () => {
    const red = await solid(32, 32, [255, 0, 0]).png().toBuffer();
    const blue = await solid(32, 32, [0, 0, 255]).png().toBuffer();
    const gif = await sharp([red, blue], { join: { animated: true } })
      .gif()
      .toBuffer();
    const out = await preprocessImage(gif);
    assert.deepEqual(out.geometry.source, { width: 32, height: 32 });
    assert.ok(pixel(out.rgb, 168, 168, 0) > 240 && pixel(out.rgb, 168, 168, 2) < 15);
  });

  it('honours EXIF orientation', async () => {
    // stored 40 x 20, left half red, right half blue; orientation 6 displays it rotated 90 deg
    // clockwise: 20 x 40 with red on top
    const raw = new Uint8Array(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw[(y * 40 + x) * 3 + (x < 20 ? 0 : 2)] = 255;
    const jpeg = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = await preprocessImage(jpeg);
    assert.deepEqual(out.geometry.source, { width: 20, height: 40 });
    assert.ok(pixel(out.rgb, 168, 40, 0) > 200, 'red on top');
    assert.ok(pixel(out.rgb, 168, 300, 2) > 200, 'blue below');
  });

  it('flattens transparency on white', async () => {
    const out = await preprocessImage(await solid(SIDE, SIDE, [0, 0, 0], 4).png().toBuffer());
    for (let c = 0; c < 3; c++) assert.equal(pixel(out.rgb, 100, 100, c), 255);
    assert.ok(Math.abs(out.pixelValues[0]! - normalised(255, 0)) < 1e-6);
  });

  it('reads 16-bit PNG as 8-bit', async () => {
    const raw16 = new Uint16Array(SIDE * SIDE * 3).fill(0x8080); // 32896 / 65535 * 255 = 128.0
    // raw.depth is read by sharp but missing from its type definitions
    const rawInput = { width: SIDE, height: SIDE, channels: 3, depth: 'ushort' } as { width: number; height: number; channels: 3 };
    const png = await sharp(Buffer.from(raw16.buffer), { raw: rawInput }).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(png).metadata()).depth, 'ushort');
    const out = await preprocessImage(png);
    for (let c = 0; c < 3; c++) assert.equal(pixel(out.rgb, 5, 5, c), 128);
  });

  it('converts CMYK JPEG to sRGB', async () => {
    const jpeg = await solid(SIDE, SIDE, [150, 120, 90]).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).space, 'cmyk');
    const out = await preprocessImage(jpeg);
    const got = [0, 1, 2].map((c) => pixel(out.rgb, 100, 100, c));
    // the sRGB -> CMYK -> sRGB round trip through ICC profiles moves colours by up to ~10 levels;
    // CMYK read as RGB would come out near its inverse, (105, 135, 165)
    assert.ok(
      got.every((v, c) => Math.abs(v - [150, 120, 90][c]!) <= 12),
      `got ${got}`,
    );
  });

  it('rasterises SVG at a fixed long side and maps back to its declared size', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"><rect width="5" height="5" fill="#00f"/></svg>');
    const out = await preprocessImage(svg);
    assert.deepEqual(out.geometry.source, { width: 10, height: 5 });
    assert.deepEqual(out.geometry.raster, { width: 1344, height: 672 });
    // left half blue, right half white (the SVG background is transparent)
    assert.ok(pixel(out.rgb, 60, 168, 2) > 240 && pixel(out.rgb, 60, 168, 0) < 15);
    assert.equal(pixel(out.rgb, 280, 168, 0), 255);
  });

  it('does not load files an SVG refers to, nor run its scripts', async () => {
    const dir = join(tmp, 'svg-refs');
    mkdirSync(dir, { recursive: true });
    const red = join(dir, 'red.png');
    writeFileSync(red, await solid(16, 16, [255, 0, 0]).png().toBuffer());
    const svgPath = join(dir, 'refs.svg');
    writeFileSync(
      svgPath,
      `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="16" height="16">
         <script>document.title = 'ran'</script>
         <rect width="16" height="16" fill="#fff"/>
         <image href="file://${red}" xlink:href="red.png" width="16" height="16"/>
       </svg>`,
    );
    const out = await preprocessImage(svgPath);
    for (let c = 0; c < 3; c++) assert.equal(pixel(out.rgb, 168, 168, c), 255, 'the referenced red image was drawn');
  });
});

describe('image preprocessing: bad files get clear errors', () => {
  async function rejects(input: string | Uint8Array, code: string, pattern: RegExp): Promise<void> {
    await assert.rejects(preprocessImage(input, { name: 'shot.png' }), (e: unknown) => {
      assert.ok(e instanceof ImageInputError, `not an ImageInputError: ${String(e)}`);
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    });
  }

  it('an empty file', () => rejects(new Uint8Array(0), 'empty', /shot\.png is empty/));
  it('a text file named .png', () => rejects(Buffer.from('hello, not an image\n'), 'unsupported', /not an image in a supported format/));
  it('a truncated PNG', async () => {
    const rng = new SeededRandom(1);
    const raw = new Uint8Array(300 * 300 * 3).map(() => rng.int(256)); // noise: the data does not compress away
    const png = await sharp(raw, { raw: { width: 300, height: 300, channels: 3 } })
      .png()
      .toBuffer();
    await rejects(png.subarray(0, Math.floor(png.length / 2)), 'truncated', /damaged or truncated/);
  });
  it('a truncated JPEG', async () => {
    const raw = new Uint8Array(300 * 300 * 3).map((_, i) => (i * 7) % 256);
    const jpeg = await sharp(raw, { raw: { width: 300, height: 300, channels: 3 } })
      .jpeg()
      .toBuffer();
    await rejects(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'truncated', /damaged or truncated/);
  });
  it('a truncated BMP', () => rejects(bmp24(40, 40, () => [1, 2, 3]).subarray(0, 300), 'truncated', /BMP/));
  it("a PNG whose header is corrupt: plain words, the decoder's own kept apart for the log", async () => {
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 9, g: 9, b: 9 } } })
      .png()
      .toBuffer();
    png.fill(0xff, 12, 29); // the IHDR chunk's type, size and depth
    await assert.rejects(preprocessImage(png, { name: 'shot.png' }), (e: unknown) => {
      assert.ok(e instanceof ImageInputError);
      assert.equal(e.message, 'shot.png is damaged or truncated: re-export or re-download it');
      assert.match(e.detail ?? '', /corrupt header/, "libvips' words, for the log");
      return true;
    });
  });
  it('a decompression bomb (a PNG declaring 50000 x 50000)', async () => {
    await rejects(await pngDeclaring(50000, 50000), 'too-large', /50000 x 50000 .*downscale/);
  });
  it('a BMP declaring 50000 x 50000', async () => {
    const bmp = bmp24(2, 2, () => [0, 0, 0]);
    bmp.writeInt32LE(50000, 18);
    bmp.writeInt32LE(50000, 22);
    await rejects(bmp, 'too-large', /50000 x 50000/);
  });
  it('a 49920 x 80 strip (a 7.5 GB padded square at full size) is padded at a bounded scale', async () => {
    const strip = await solid(49920, 80, [255, 0, 0]).png().toBuffer();
    const out = await preprocessImage(strip);
    assert.deepEqual(out.geometry.padded, { width: 49920, height: 49920, left: 0, top: 24920 });
    for (let c = 0; c < 3; c++) assert.equal(pixel(out.rgb, 168, 10, c), PAD[c]);
    assert.ok(pixel(out.rgb, 168, 168, 0) > PAD[0]!, 'the strip shows in the middle row');
  });
  it('a 4400 x 2000 image (past the canvas cap) keeps its colours and padding', async () => {
    const out = await preprocessImage(await solid(4400, 2000, [10, 200, 90]).jpeg({ quality: 95 }).toBuffer());
    assert.deepEqual(out.geometry.padded, { width: 4400, height: 4400, left: 0, top: 1200 });
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(pixel(out.rgb, 168, 168, c) - [10, 200, 90][c]!) <= 3);
      assert.equal(pixel(out.rgb, 168, 20, c), PAD[c]);
    }
  });
  it('a 1 x 1 image is fine', async () => {
    const out = await preprocessImage(await solid(1, 1, [9, 9, 9]).png().toBuffer());
    assert.equal(pixel(out.rgb, 100, 100, 0), 9);
  });
  it('a missing path', () => rejects(join(tmp, 'nope.png'), 'not-found', /does not exist/));
  it('a folder', () => rejects(tmp, 'unreadable', /is not a file/));
});

describe('image geometry maps patches back onto the source image', () => {
  it('with padding (640 x 480 -> 640 x 640 canvas, image at top 80)', () => {
    const g = llavaGeometry({ width: 640, height: 480 }, { width: 640, height: 480 }, LLAVA_15_PREPROCESS);
    assert.deepEqual(g.padded, { width: 640, height: 640, left: 0, top: 80 });
    assert.deepEqual(g.resized, { width: 336, height: 336 });
    assert.equal(patchBox(g, 0, 24), undefined); // rows 0..26.7 of the canvas are padding
    // patch (row 5, col 2): model y 70..84 -> canvas 133.3..160 -> source 53.3..80; x 28..42 -> 53.3..80
    const box = patchBox(g, 5 * 24 + 2, 24)!;
    assert.ok(Math.abs(box.top - 160 / 3) < 1e-9 && Math.abs(box.bottom - 80) < 1e-9);
    assert.ok(Math.abs(box.left - 160 / 3) < 1e-9 && Math.abs(box.right - 80) < 1e-9);
  });

  it('with a centre crop (640 x 480 -> 448 x 336, crop from x = 56)', () => {
    const g = llavaGeometry({ width: 640, height: 480 }, { width: 640, height: 480 }, { ...LLAVA_15_PREPROCESS, padToSquare: false });
    assert.deepEqual(g.resized, { width: 448, height: 336 });
    assert.deepEqual(g.crop, { width: 336, height: 336, left: 56, top: 0 });
    const box = patchBox(g, 0, 24)!; // x 56..70 of 448 -> 80..100 of 640; y 0..14 of 336 -> 0..20
    assert.ok(Math.abs(box.left - 80) < 1e-9 && Math.abs(box.right - 100) < 1e-9);
    assert.ok(Math.abs(box.top - 0) < 1e-9 && Math.abs(box.bottom - 20) < 1e-9);
  });

  it('scales a rasterised SVG back to its declared size', () => {
    const g = llavaGeometry({ width: 10, height: 5 }, { width: 1344, height: 672 }, LLAVA_15_PREPROCESS);
    const box = patchBox(g, 23 * 24 + 23, 24); // bottom-right patch: in the padding
    assert.equal(box, undefined);
    const mid = patchBox(g, 12 * 24, 24)!; // row 12 starts at model y 168 = canvas 672 -> raster 336
    assert.ok(Math.abs(mid.left) < 1e-9 && Math.abs(mid.top - 2.5) < 1e-9);
  });
});

describe('preprocessor_config.json', () => {
  it("reads llava-hf/llava-1.5-7b-hf's file as LLaVA-1.5's defaults", () => {
    const config = preprocessConfigFromJson({
      crop_size: { height: 336, width: 336 },
      do_center_crop: true,
      do_convert_rgb: true,
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_processor_type: 'CLIPImageProcessor',
      image_std: [0.26862954, 0.26130258, 0.27577711],
      processor_class: 'LlavaProcessor',
      resample: 3,
      rescale_factor: 0.00392156862745098,
      size: { shortest_edge: 336 },
    });
    assert.deepEqual(config, LLAVA_15_PREPROCESS);
  });

  it('honours do_pad, other sizes and a scalar mean', () => {
    const c = preprocessConfigFromJson({ do_pad: false, size: { shortest_edge: 224 }, crop_size: 224, image_mean: 0.5 });
    assert.equal(c.padToSquare, false);
    assert.equal(c.shortestEdge, 224);
    assert.equal(c.cropWidth, 224);
    assert.deepEqual(c.imageMean, [0.5, 0.5, 0.5]);
  });

  it('rejects nonsense with a message naming the field', () => {
    assert.throws(() => preprocessConfigFromJson([]), PreprocessConfigError);
    assert.throws(() => preprocessConfigFromJson({ image_std: [1, 0, 1] }), /image_std/);
    assert.throws(() => preprocessConfigFromJson({ image_mean: [1, 2] }), /image_mean/);
    assert.throws(() => preprocessConfigFromJson({ size: { shortest_edge: -3 } }), /shortest_edge/);
    assert.throws(() => preprocessConfigFromJson({ crop_size: { width: 'x' } }), /crop_size\.width/);
  });
});
