/**
 * LLaVA-NeXT end to end against independent references: transformers' anyres preprocessing
 * (test/reference/anyresReference.ts), float64 CLIP per sub-image, pack_image_features with
 * unpadding and image_newline for `none`, the float64 PruMerge transcription restricted to each
 * sub-image's valid patches for the reduced modes, float64 projector and LLaMA / Mistral.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildFromCheckpoint, buildSynthetic } from '../../../../src/builder/buildModel';
import { VISION_IO } from '../../../../src/format/graphNames';
import { DEFAULT_GRID_PINPOINTS, llavaConfigFromJson } from '../../../../src/families/llavaConfig';
import { LLAVA_MISTRAL_CHAT_TEMPLATE, llamaTokenizerConfig } from '../../../../src/families/text/llama/llamaTokenizer';
import { shapeConfig } from '../../../../src/builder/shapes';
import { clipPreprocess } from '../../../../src/format/preprocessConfig';
import { featureLayer } from '../../../../src/families/llavaConfig';
import { SeededRandom } from '../../../../src/common/random';
import { anyresLayout } from '../../../../src/pipeline/image/anyres';
import { HeatmapCell, heatmapFigures } from '../../../../src/shared/heatmapLayout';
import { Engine } from '../../../../src/pipeline/engine/engine';
import { preprocessAnyres } from '../../../../src/pipeline/image/preprocessAnyres';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { decodePng, noisePng } from '../../../helpers/images';
import { relativeError, scratchDir, TinyCheckpoint, tinyCheckpoint, visionRef } from '../../../helpers/checkpoints';
import { assertReferenceTokens } from '../../../helpers/greedy';
import { referencePack, referenceSubImages } from '../../../reference/anyresReference';
import { clipVision, projector } from '../../../reference/llavaReference';
import { assertSelection, ReferenceCrop, SELECTIONS } from '../../../helpers/tiledSelections';
import { referencePruMerge } from '../../../reference/prumergeReference';

const SCREENSHOT = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'editor-screenshot.png');
const MODES = ['none', 'prumerge', 'prumerge+', 'topk:3'] as const;
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

describe('LLaVA-NeXT anyres layout', () => {
  // 576 + kept rows x (kept columns + 1), worked by hand in docs/llava-next.md
  const cases: [number, number, number][] = [
    [1024, 768, 576 + 36 * (48 + 1)],
    [768, 1024, 576 + 48 * (36 + 1)],
    [672, 672, 576 + 48 * (48 + 1)],
    [336, 336, 576 + 24 * (24 + 1)],
  ];
  for (const [width, height, tokens] of cases) {
    it(`gives ${width} x ${height} ${tokens} visual tokens`, () => {
      assert.equal(anyresLayout({ width, height }, DEFAULT_GRID_PINPOINTS, 336, 24).tokens, tokens);
    });
  }

  it('takes the first of equally good grids, and marks the padding unpadding removes', () => {
    const layout = anyresLayout({ width: 336, height: 336 }, DEFAULT_GRID_PINPOINTS, 336, 24);
    assert.deepEqual(layout.best, { width: 672, height: 336 }); // (336, 672) comes before (672, 336)
    assert.equal(layout.subImages.length, 3);
    // the image sits in the middle of the 48 columns: each tile keeps its inner 12
    const [, left, right] = layout.subImages;
    assert.equal(left!.valid.length, 24 * 12);
    assert.ok(left!.valid.every((p) => p % 24 >= 12));
    assert.ok(right!.valid.every((p) => p % 24 < 12));
  });
});

describe('LLaVA-NeXT preprocessing', () => {
  const config = clipPreprocess(336);
  for (const [label, make] of [
    ['a wide noise image (500 x 300)', () => noisePng(500, 300, 3)],
    ['a tall noise image (300 x 700)', () => noisePng(300, 700, 4)],
    ['the 1024 x 768 screenshot sample', async () => SCREENSHOT],
  ] as const) {
    it(`cuts ${label} as transformers' slow processor does, within one grey level`, async () => {
      const path = await make();
      const ours = await preprocessAnyres(path, DEFAULT_GRID_PINPOINTS, 24, { config });
      const img = await decodePng(path);
      const ref = referenceSubImages(
        img.rgb,
        img.width,
        img.height,
        DEFAULT_GRID_PINPOINTS.map(([h, w]) => [h, w]),
        336,
      );
      assert.equal(ours.rgb.length, ref.images.length);
      for (let s = 0; s < ref.images.length; s++) {
        let worst = 0;
        for (let i = 0; i < ref.images[s]!.length; i++) worst = Math.max(worst, Math.abs(ours.rgb[s]![i]! - ref.images[s]![i]!));
        assert.ok(worst <= 1, `sub-image ${s}: off by ${worst} grey levels`);
      }
      // normalised as CLIP's processor does: (v / 255 - mean) / std, channel planes
      const v = ref.images[1]![(5 * 336 + 7) * 3 + 2]!;
      assert.ok(Math.abs(ours.pixelValues[3 * 336 * 336 + 2 * 336 * 336 + 5 * 336 + 7]! - (v / 255 - MEAN[2]!) / STD[2]!) < 0.02);
    });
  }
});

interface Subject {
  readonly engine: Engine;
  readonly ckpt: TinyCheckpoint;
}

/** The float64 reference's reading of `image`: each sub-image's tower taps, the projector, and the unreduced packing. */
async function referenceCrops(s: Subject, image: string) {
  const { config, weights } = s.ckpt;
  const tile = config.vision.imageSize;
  const grid = tile / config.vision.patchSize;
  const img = await decodePng(image);
  const sub = referenceSubImages(
    img.rgb,
    img.width,
    img.height,
    config.tiles!.gridPinpoints.map(([h, w]) => [h, w]),
    tile,
  );
  const f = featureLayer(config);
  const taps = sub.images.map((rgb) => {
    const pixels = new Float32Array(3 * tile * tile);
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < tile * tile; p++) pixels[c * tile * tile + p] = (rgb[p * 3 + c]! / 255 - MEAN[c]!) / STD[c]!;
    const vis = clipVision(visionRef(config), weights, pixels);
    return {
      hidden: vis.hiddenStates[f]!.map((r) => Array.from(r)),
      q: vis.q[f]!.map((r) => Array.from(r)),
      k: vis.k[f]!.map((r) => Array.from(r)),
    };
  });
  const project = (rows: number[][]): Float64Array[] =>
    projector(
      weights,
      rows.map((r) => Float64Array.from(r)),
      config.text.hiddenSize,
      config.projectorHiddenAct,
    );
  const newline = Float64Array.from(weights('image_newline'));
  const packed = referencePack(
    taps.map((t) => project(t.hidden.slice(1))),
    sub.gridShape,
    grid,
    [img.height, img.width],
    newline,
  );
  const all = [...Array(grid * grid).keys()];
  // the patches each sub-image keeps after unpadding: all of the overview's
  return { taps, project, packed, valid: [all, ...packed.kept] };
}

/** The reference's visual rows for `mode`, and the kept patches per sub-image. */
async function referenceVisual(
  s: Subject,
  image: string,
  mode: (typeof MODES)[number],
): Promise<{ rows: Float64Array[]; kept: number[][] }> {
  const { taps, project, packed, valid } = await referenceCrops(s, image);
  if (mode === 'none') return { rows: packed.rows, kept: valid };
  const rows: Float64Array[] = [];
  const kept: number[][] = [];
  taps.forEach((t, i) => {
    if (valid[i]!.length === 0) return;
    const r = referencePruMerge(t.hidden, t.q, t.k, mode === 'topk:3' ? { topk: 3 } : mode, i === 0 ? undefined : valid[i]);
    rows.push(...project(r.features));
    kept.push(r.kept);
  });
  return { rows, kept };
}

/** Each sub-image with valid patches as the selections' references read it (VisPruner: by CLS attention). */
async function selectionCrops(s: Subject, image: string): Promise<ReferenceCrop[]> {
  const { taps, project, valid } = await referenceCrops(s, image);
  return taps.flatMap((t, i) => {
    const v = valid[i]!;
    if (v.length === 0) return [];
    const attention = referencePruMerge(t.hidden, t.q, t.k, { topk: 1 }).attention;
    return [
      {
        valid: v,
        projected: project(v.map((p) => t.hidden[p + 1]!)).map((r) => Array.from(r)),
        features: v.map((p) => t.hidden[p + 1]!),
        score: v.map((p) => attention[p]!),
      },
    ];
  });
}

function describeNext(label: string, load: () => Promise<Subject>): void {
  describe(label, () => {
    let s: Subject;
    let square: string;
    before(async () => {
      s = await load();
      const tile = s.ckpt.config.vision.imageSize; // one tile's size: laid out as two tiles, like 336 x 336 for LLaVA-1.6
      square = await noisePng(tile, tile, 9);
    });

    for (const mode of MODES) {
      for (const [name, image] of [
        ['the 1024 x 768 screenshot', () => SCREENSHOT],
        ['a square image of one tile (two tiles, half of each unpadded away)', () => square],
      ] as const) {
        it(`gives the reference's greedy tokens with ${mode} on ${name}`, async () => {
          const r = await s.engine.ask({
            image: image(),
            question: 'What does the screen show?',
            reduce: parseReduceMode(mode),
            maxNewTokens: 4,
          });
          const ref = await referenceVisual(s, image(), mode);
          assert.equal(r.visual.kept, ref.rows.length);
          const grid = s.ckpt.config.vision.imageSize / s.ckpt.config.vision.patchSize;
          if (mode === 'none') assert.equal(r.visual.total, ref.rows.length);
          if (image() === square) assert.equal(r.visual.subImages!.length, 3);
          else
            assert.deepEqual(
              r.visual.subImages!.map((x) => x.kept),
              ref.kept.filter((k) => k.length > 0),
            );
          assert.equal(r.visual.subImages![0]!.kind, 'overview');
          assert.ok(r.visual.subImages!.every((x) => x.kept.every((p) => p >= 0 && p < grid * grid)));
          const encoded = await s.engine.encodeImage(image(), parseReduceMode(mode));
          const h = s.ckpt.config.text.hiddenSize;
          const flat = ref.rows.flatMap((row) => Array.from(row));
          assert.equal(encoded.embeds.length, flat.length);
          assert.ok(
            relativeError(encoded.embeds, flat) < 1e-4,
            `visual rows differ: ${relativeError(encoded.embeds, flat)} (${flat.length / h} rows)`,
          );
          assert.ok(r.tokens.length > 0);
          assertReferenceTokens(s.ckpt, s.engine.manifest.tokenizer.imageTokenId, r, ref.rows);
        });
      }
    }

    for (const mode of SELECTIONS) {
      it(`gives the reference's greedy tokens with ${mode} on the screenshot, each tile over its valid patches`, () =>
        assertSelection(s, SCREENSHOT, mode, (image) => selectionCrops(s, image)));
    }

    it('maps the tiles back onto the picture for the heatmap, each part of it covered once', async () => {
      for (const image of [square, SCREENSHOT]) {
        const r = await s.engine.inspect(image, parseReduceMode('prumerge'));
        const { headline, figures } = heatmapFigures(r);
        assert.match(headline, new RegExp(`^prumerge keeps ${r.visualRows} of ${r.total} visual tokens`));
        assert.equal(figures.length, 2);
        const [overview, tiles] = figures.map((f) => f.layout);
        const area = (cells: HeatmapCell[]): number =>
          cells.reduce((a, c) => a + (c.box.right - c.box.left) * (c.box.bottom - c.box.top), 0);
        const picture = overview!.width * overview!.height;
        assert.ok(Math.abs(area(overview!.cells) - picture) < 1e-6 * picture, 'the overview covers the picture');
        assert.ok(Math.abs(area(tiles!.cells) - picture) < 1e-6 * picture, 'the tiles cover the picture once');
        const kept = tiles!.cells.filter((c) => c.role === 'kept' || c.role === 'spatial').length;
        assert.equal(
          kept,
          r.subImages!.slice(1).reduce((n, t) => n + t.kept.length, 0),
        );
      }
    });
  });
}

async function load(ckpt: TinyCheckpoint, template?: string): Promise<Subject> {
  if (template)
    writeFileSync(join(ckpt.dir, 'tokenizer_config.json'), JSON.stringify({ ...llamaTokenizerConfig(), chat_template: template }));
  const dir = join(scratchDir('next'), 'model');
  await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
  return { engine: await Engine.load(dir, { ep: 'cpu' }), ckpt };
}

describeNext('LLaVA-NeXT with a LLaMA text model (hub layout)', async () =>
  load(await tinyCheckpoint({ seed: 51, std: 0.3 }, () => {}, 'tiny-next')),
);

describeNext('LLaVA-NeXT with a Mistral text model (transformers layout)', async () => {
  const ckpt = await tinyCheckpoint(
    { seed: 52, std: 0.3, layout: 'transformers' },
    (c) => Object.assign(c['text_config'] as object, { model_type: 'mistral', rope_theta: 1e6, sliding_window: null }),
    'tiny-next',
  );
  const subject = await load(ckpt, LLAVA_MISTRAL_CHAT_TEMPLATE);
  assert.match(subject.engine.prompt.render([{ question: 'hi' }]), /^\[INST\] <image>\nhi \[\/INST\]$/);
  return subject;
});

describe('LLaVA-NeXT with a grid that unpadding leaves tiles of empty', () => {
  it('skips the empty tiles and reduces the others as the reference does', async () => {
    // 3 x 3 tiles of 56 px for a 560 x 56 strip: unpadding keeps patch rows 5 and 6 of 12
    const s = await load(
      await tinyCheckpoint({ seed: 53, std: 0.3 }, (c) => Object.assign(c, { image_grid_pinpoints: [[168, 168]] }), 'tiny-next'),
    );
    const strip = await noisePng(560, 56, 11);
    const r = await s.engine.ask({ image: strip, question: 'What is it?', reduce: parseReduceMode('prumerge+'), maxNewTokens: 3 });
    assert.deepEqual(
      r.visual.subImages!.map((x) => [x.kind, x.row, x.col]),
      [
        ['overview', 0, 0],
        ['tile', 1, 0],
        ['tile', 1, 1],
        ['tile', 1, 2],
      ],
    );
    // the tower ran on the overview and all nine tiles, the six emptied ones too: what bench divides its time by
    assert.equal(r.visual.visionRuns, 1 + 9);
    const ref = await referenceVisual(s, strip, 'prumerge+');
    assert.deepEqual(
      r.visual.subImages!.map((x) => x.kept),
      ref.kept,
    );
    assertReferenceTokens(s.ckpt, s.engine.manifest.tokenizer.imageTokenId, r, ref.rows);
  });
});

describe('the vision graph', () => {
  it('takes a batch of sub-images, each row of the batch as if run alone', async () => {
    const dir = join(scratchDir('next-batch'), 'model');
    await buildSynthetic('tiny-next', 3, { out: dir, dtype: 'fp32' });
    const session = await ort.InferenceSession.create(join(dir, 'vision.onnx'));
    const plane = 3 * 56 * 56;
    const rng = new SeededRandom(5);
    const pixels = Float32Array.from({ length: 2 * plane }, () => rng.uniform() * 4 - 2);
    const both = await session.run({ [VISION_IO.pixels]: new ort.Tensor('float32', pixels, [2, 3, 56, 56]) });
    for (let b = 0; b < 2; b++) {
      const one = await session.run({
        [VISION_IO.pixels]: new ort.Tensor('float32', pixels.slice(b * plane, (b + 1) * plane), [1, 3, 56, 56]),
      });
      for (const name of [VISION_IO.hidden, VISION_IO.q, VISION_IO.k]) {
        const all = both[name]!.data as Float32Array;
        const alone = one[name]!.data as Float32Array;
        assert.deepEqual(both[name]!.dims, [2, 17, 32]);
        assert.ok(relativeError(all.subarray(b * alone.length, (b + 1) * alone.length), alone) < 1e-5, `${name}, image ${b}`);
      }
    }
    await session.release();
  });
});

describe('LLaVA-NeXT checkpoints the builder refuses', () => {
  it('refuses a Mistral sliding window shorter than the context, in one line', () => {
    const json = shapeConfig('tiny-next');
    Object.assign(json['text_config'] as object, { model_type: 'mistral', sliding_window: 128 });
    assert.throws(
      () => llavaConfigFromJson(json),
      /^CheckpointError: text_config\.sliding_window 128 is shorter than the context \(512 positions\)[^\n]*$/,
    );
  });

  it('refuses grid pinpoints that are not whole tiles', () => {
    const json = { ...shapeConfig('tiny-next'), image_grid_pinpoints: [[56, 100]] };
    assert.throws(
      () => llavaConfigFromJson(json),
      /image_grid_pinpoints must be a list of \[height, width\] pairs, each a multiple of the vision tower's 56 pixels/,
    );
  });
});
