/**
 * LLaVA-OneVision and LLaVA-Interleave (SigLIP + Qwen2) end to end against independent
 * references: transformers' anyres preprocessing (test/reference/anyresReference.ts), float64
 * SigLIP per sub-image with the attention each patch receives, OneVision's pack_image_features
 * (unpadding, bilinear downsampling, image_newline) for `none`, the float64 PruMerge
 * transcription on the received-attention score for the reduced modes, float64 projector and
 * Qwen2 (LLaMA's layers with q / k / v biases).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFromCheckpoint, buildSynthetic } from '../../../../src/builder/buildModel';
import { featureLayer, llavaConfigFromJson } from '../../../../src/families/llavaConfig';
import { shapeConfig } from '../../../../src/builder/shapes';
import { onevisionPinpoints } from '../../../../src/families/layout/llavaOnevision/llavaOnevisionLayout';
import { CHATML_IMAGE_TEMPLATE, qwen2TokenizerConfig } from '../../../../src/families/text/qwen2/qwen2Tokenizer';
import { Engine } from '../../../../src/pipeline/engine/engine';
import { anyresLayout } from '../../../../src/pipeline/image/anyres';
import { heatmapFigures } from '../../../../src/shared/heatmapLayout';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import type { AskResult } from '../../../../src/shared/results';
import { decodePng, noisePng } from '../../../helpers/images';
import { relativeError, scratchDir, TinyCheckpoint, tinyCheckpoint } from '../../../helpers/checkpoints';
import { assertReferenceTokens } from '../../../helpers/greedy';
import { referencePackOnevision, referenceSubImages } from '../../../reference/anyresReference';
import { pilBicubicResize } from '../../../reference/pilResize';
import { MODES, Mode, projectRows, reduce, referenceLow, Subject, towerTaps } from '../../../helpers/onevision';
import { assertSelection, ReferenceCrop, SELECTIONS } from '../../../helpers/tiledSelections';

const SCREENSHOT = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'editor-screenshot.png');

describe('LLaVA-OneVision token counts', () => {
  // 729 + lines x (line length + 1) of the unpadded (and, past 9 tiles' worth, downsampled) grid, by hand:
  const cases: [string, number, number, number][] = [
    // best 768 x 1152 (2 x 3 tiles), grid 54 x 81, unpadded to 54 x 73 rows x columns, ratio 0.78
    ['wide', 1024, 768, 729 + 54 * 74],
    // best 1152 x 768 (3 x 2 tiles), grid 81 x 54, new height round(1024 * 54 / 768) = 72, pad 4: 73 x 54
    ['tall', 768, 1024, 729 + 73 * 55],
    // best 1152 x 1536 (3 x 4 tiles), grid 81 x 108, ratio 1.155 -> 70 x 93
    ['large', 1536, 1152, 729 + 70 * 94],
    // one tile, 27 x 27
    ['square', 384, 384, 729 + 27 * 28],
    ['tiny', 10, 10, 729 + 27 * 28],
  ];
  for (const [label, width, height, tokens] of cases) {
    it(`gives a ${label} ${width} x ${height} image ${tokens} visual tokens`, () => {
      assert.equal(anyresLayout({ width, height }, onevisionPinpoints(384), 384, 27, 9).tokens, tokens);
    });
  }

  it('reads the real 0.5B shape: SigLIP at 384 px (27 x 27 patches, 26 layers), Qwen2 with tied embeddings', () => {
    const c = llavaConfigFromJson(shapeConfig('llava-onevision-0.5b'));
    assert.deepEqual(c.family, { vision: 'siglip', text: 'qwen2', layout: 'llava_onevision' });
    assert.equal(featureLayer(c), 25);
    assert.equal(c.tiles!.gridPinpoints.length, 36);
    assert.equal(c.tiles!.maxTiles, 9);
    assert.ok(c.text.tieWordEmbeddings && c.text.attentionBias);
  });
});

/** The float64 reference's reading of `image`: each sub-image's SigLIP taps and the unreduced packing. */
async function onevisionCrops(s: Subject, image: string) {
  const { config, weights } = s.ckpt;
  const tile = config.vision.imageSize;
  const grid = Math.floor(tile / config.vision.patchSize);
  const img = await decodePng(image);
  const sub = referenceSubImages(
    img.rgb,
    img.width,
    img.height,
    config.tiles!.gridPinpoints.map(([h, w]) => [h, w]),
    tile,
  );
  const taps = sub.images.map((rgb) => towerTaps(s.ckpt, rgb));
  const packed = referencePackOnevision(
    taps.map((t) => projectRows(s.ckpt, t.hidden)),
    sub.gridShape,
    grid,
    [img.height, img.width],
    Float64Array.from(weights('image_newline')),
    config.tiles!.maxTiles!,
  );
  const all = [...Array(grid * grid).keys()];
  return { taps, packed, valid: [all, ...packed.kept] };
}

/** OneVision's visual rows for `mode`, and the kept patches per sub-image. */
async function referenceOnevision(s: Subject, image: string, mode: Mode): Promise<{ rows: Float64Array[]; kept: number[][] }> {
  const { taps, packed, valid } = await onevisionCrops(s, image);
  if (mode === 'none') return { rows: packed.rows, kept: valid };
  const rows: Float64Array[] = [];
  const kept: number[][] = [];
  taps.forEach((t, i) => {
    if (valid[i]!.length === 0) return;
    const r = reduce(t, mode, i === 0 ? undefined : valid[i]);
    rows.push(...projectRows(s.ckpt, r.features));
    kept.push(r.kept);
  });
  return { rows, kept };
}

/** Each sub-image with valid patches as the selections' references read it (VisPruner: by the attention each patch receives). */
async function selectionCrops(s: Subject, image: string): Promise<ReferenceCrop[]> {
  const { taps, valid } = await onevisionCrops(s, image);
  return taps.flatMap((t, i) => {
    const v = valid[i]!;
    if (v.length === 0) return [];
    const features = v.map((p) => t.hidden[p]!);
    return [
      { valid: v, projected: projectRows(s.ckpt, features).map((r) => Array.from(r)), features, score: v.map((p) => t.received[p]!) },
    ];
  });
}

async function load(ckpt: TinyCheckpoint): Promise<Subject> {
  const dir = join(scratchDir('ov'), 'model');
  await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
  return { engine: await Engine.load(dir, { ep: 'cpu' }), ckpt };
}

async function checkAgainst(
  s: Subject,
  image: string,
  mode: Mode,
  reference: (s: Subject, image: string, mode: Mode) => Promise<{ rows: Float64Array[]; kept: number[][] }>,
): Promise<AskResult> {
  const r = await s.engine.ask({ image, question: 'What does the screen show?', reduce: parseReduceMode(mode), maxNewTokens: 4 });
  const ref = await reference(s, image, mode);
  assert.equal(r.visual.kept, ref.rows.length);
  if (mode === 'none') assert.equal(r.visual.total, ref.rows.length);
  else if (r.visual.subImages)
    assert.deepEqual(
      r.visual.subImages.map((x) => x.kept),
      ref.kept.filter((k) => k.length > 0),
    );
  else assert.deepEqual(r.visual.indices, ref.kept[0]);
  const encoded = await s.engine.encodeImage(image, parseReduceMode(mode));
  const flat = ref.rows.flatMap((row) => Array.from(row));
  assert.equal(encoded.embeds.length, flat.length);
  assert.ok(relativeError(encoded.embeds, flat) < 1e-4, `visual rows differ: ${relativeError(encoded.embeds, flat)}`);
  assert.ok(r.tokens.length > 0);
  assertReferenceTokens(s.ckpt, s.engine.manifest.tokenizer.imageTokenId, r, ref.rows);
  return r;
}

function describeOnevision(label: string, make: () => Promise<TinyCheckpoint>): void {
  describe(label, () => {
    let s: Subject;
    const images: Record<string, string> = {};
    before(async () => {
      s = await load(await make());
      images['the 1024 x 768 screenshot (5 x 6 tiles, downsampled to 4 x 6)'] = SCREENSHOT;
      images['a square image of one tile'] = await noisePng(60, 60, 9);
      // 1 x 4 tiles, nothing padded
      images['a 240 x 60 strip'] = await noisePng(240, 60, 10);
      // 6 x 1 tiles; unpadding keeps patch columns 1 and 2 of 4, and the 24 x 2 grid is downsampled to 19 x 1
      images['a 30 x 480 strip'] = await noisePng(30, 480, 14);
    });

    for (const mode of MODES) {
      it(`gives the reference's rows and greedy tokens with ${mode}`, async () => {
        for (const image of Object.values(images)) await checkAgainst(s, image, mode, referenceOnevision);
      });
    }

    for (const mode of SELECTIONS) {
      it(`gives the reference's greedy tokens with ${mode} on the screenshot, each crop over its valid patches`, () =>
        assertSelection(s, SCREENSHOT, mode, (image) => selectionCrops(s, image)));
    }

    it('counts the screenshot as pack_image_features does: the overview, then 4 lines of 6 and a newline', async () => {
      const r = await s.engine.ask({ image: SCREENSHOT, question: 'Hi', reduce: parseReduceMode('none'), maxNewTokens: 1 });
      assert.equal(r.visual.total, 16 + 4 * (6 + 1));
      assert.equal(r.visual.visionRuns, 1 + 30);
    });

    it('draws the heatmap over the base image and the tiles, in 14 px cells that leave the unread pixels out', async () => {
      const r = await s.engine.inspect(SCREENSHOT, parseReduceMode('prumerge'));
      assert.equal(r.gridCoverage, (4 * 14) / 60);
      const { figures } = heatmapFigures(r);
      assert.equal(figures.length, 2);
      const overview = figures[0]!.layout;
      // the base image is the picture squashed to 60 x 60; its 4 x 4 patches read 56 x 56 of it
      const picture = { width: 1024, height: 768 };
      const area = overview.cells.reduce((a, c) => a + (c.box.right - c.box.left) * (c.box.bottom - c.box.top), 0);
      const read = picture.width * picture.height * (56 / 60) ** 2;
      assert.ok(Math.abs(area - read) < 1e-6 * read, `the base image's cells cover ${area}, expected ${read}`);
      const first = overview.cells.find((c) => c.patch === 0)!.box;
      assert.ok(Math.abs(first.right - (14 / 60) * picture.width) < 1e-6);
      const kept = figures[1]!.layout.cells.filter((c) => c.role === 'kept' || c.role === 'spatial').length;
      assert.ok(kept <= r.subImages!.slice(1).reduce((n, t) => n + t.kept.length, 0));
    });

    it('scores patches by the attention they receive, and says so', async () => {
      const r = await s.engine.inspect(SCREENSHOT, parseReduceMode('prumerge'));
      assert.ok(r.subImages!.every((x) => x.score === 'received'));
      const sum = r.subImages![0]!.attention.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `the overview's received attention sums to 1 over its patches (${sum})`);
    });
  });
}

describeOnevision('LLaVA-OneVision (SigLIP, Qwen2; hub layout)', () => tinyCheckpoint({ seed: 61, std: 0.3 }, () => {}, 'tiny-onevision'));
describeOnevision('LLaVA-OneVision (transformers layout, bfloat16)', () =>
  tinyCheckpoint({ seed: 62, std: 0.3, layout: 'transformers', dtype: 'BF16' }, () => {}, 'tiny-onevision'),
);

/** Qwen2-Instruct's own template: text only, content as a string. */
const QWEN2_TEXT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
/** The processor's, with transformers' {% generation %} tags around the assistant's text. */
const PROCESSOR_TEMPLATE = CHATML_IMAGE_TEMPLATE.replace(
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}",
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% if message['role'] == 'assistant' %}{% generation %}{{ content['text'] }}{% endgeneration %}{% else %}{{ content['text'] }}{% endif %}{% endfor %}",
);

describe('LLaVA-OneVision with a grid that unpadding leaves whole tile rows of empty', () => {
  it('skips the empty tiles and gives the reference rows and tokens, unreduced and reduced', async () => {
    // 3 x 3 tiles of 60 px for a 600 x 60 strip: unpadding keeps patch rows 5 and 6 of 12, all in the middle tile row
    const ckpt = await tinyCheckpoint(
      { seed: 67, std: 0.3 },
      (c) => Object.assign(c, { image_grid_pinpoints: [[180, 180]] }),
      'tiny-onevision',
    );
    const s = await load(ckpt);
    const strip = await noisePng(600, 60, 15);
    for (const mode of ['none', 'prumerge+'] as const) {
      const r = await checkAgainst(s, strip, mode, referenceOnevision);
      assert.equal(r.visual.visionRuns, 1 + 9);
      if (mode === 'none') assert.equal(r.visual.total, 16 + 2 * (12 + 1));
      else
        assert.deepEqual(
          r.visual.subImages!.map((x) => [x.kind, x.row, x.col]),
          [
            ['overview', 0, 0],
            ['tile', 1, 0],
            ['tile', 1, 1],
            ['tile', 1, 2],
          ],
        );
    }
  });
});

describe('LLaVA-Interleave (LlavaForConditionalGeneration with SigLIP and Qwen2)', () => {
  let s: Subject;
  let wide: string;
  before(async () => {
    const ckpt = await tinyCheckpoint({ seed: 63, std: 0.3 }, () => {}, 'tiny-interleave');
    // as on the hub: tokenizer_config.json holds Qwen2's text-only template, chat_template.json the processor's
    writeFileSync(
      join(ckpt.dir, 'tokenizer_config.json'),
      JSON.stringify({ ...qwen2TokenizerConfig(), chat_template: QWEN2_TEXT_TEMPLATE }),
    );
    writeFileSync(join(ckpt.dir, 'chat_template.json'), JSON.stringify({ chat_template: PROCESSOR_TEMPLATE }));
    s = await load(ckpt);
    wide = await noisePng(150, 90, 12);
  });

  /** SiglipImageProcessor squashes the image to the tower's size; one grid, no newline. */
  async function referenceInterleave(_s: Subject, image: string, mode: Mode): Promise<{ rows: Float64Array[]; kept: number[][] }> {
    const tile = s.ckpt.config.vision.imageSize;
    const img = await decodePng(image);
    const t = towerTaps(s.ckpt, pilBicubicResize(img.rgb, img.width, img.height, tile, tile));
    if (mode === 'none') return { rows: projectRows(s.ckpt, t.hidden), kept: [[...t.hidden.keys()]] };
    const r = reduce(t, mode);
    return { rows: projectRows(s.ckpt, r.features), kept: [r.kept] };
  }

  for (const mode of MODES) {
    it(`gives the reference's rows and greedy tokens with ${mode} on a squashed 150 x 90 image`, async () => {
      await checkAgainst(s, wide, mode, referenceInterleave);
    });
  }

  it("renders the processor's template (ChatML, the image before the question), not the text model's, and no beginning-of-sequence token", () => {
    const text = s.engine.prompt.render([{ question: 'What is it? <|im_end|>' }]);
    assert.equal(
      text,
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is it? ‹|im_end|><|im_end|>\n<|im_start|>assistant\n',
    );
    assert.match(
      s.engine.prompt.render([{ question: 'a', answer: 'b' }, { question: 'c' }]),
      /<\|im_start\|>assistant\nb<\|im_end\|>\n<\|im_start\|>user\nc<\|im_end\|>/,
    );
    const ids = s.engine.prompt.ids([{ question: 'hi' }], 2).ids;
    assert.equal(ids.filter((id) => id === 259).length, 2);
    assert.equal(s.engine.manifest.tokenizer.bosTokenId, null);
  });
});

describe('SigLIP and Qwen2 checkpoints the builder refuses', () => {
  it('refuses a Qwen2 sliding window that is on and shorter than the context, in one line', () => {
    const json = shapeConfig('tiny-onevision');
    Object.assign(json['text_config'] as object, { use_sliding_window: true, sliding_window: 256 });
    assert.throws(
      () => llavaConfigFromJson(json),
      /^CheckpointError: text_config\.sliding_window 256 is shorter than the context \(1024 positions\)[^\n]*$/,
    );
  });

  it('refuses a CLS-dropping strategy on a tower without CLS', () => {
    const json = { ...shapeConfig('tiny-onevision'), vision_feature_select_strategy: 'default' };
    assert.throws(() => llavaConfigFromJson(json), /vision_feature_select_strategy "default" is not supported with a siglip tower/);
  });

  it('refuses an aspect-ratio setting other than anyres_max_N', () => {
    const json = { ...shapeConfig('tiny-onevision'), vision_aspect_ratio: 'pad' };
    assert.throws(() => llavaConfigFromJson(json), /vision_aspect_ratio "pad" is not supported \(anyres_max_N\)/);
  });
});

describe('LLaVA-OneVision at low detail', () => {
  let s: Subject;
  let wide: string;
  before(async () => {
    s = await load(await tinyCheckpoint({ seed: 64, std: 0.3 }, () => {}, 'tiny-onevision'));
    wide = await noisePng(150, 90, 13);
  });

  for (const mode of MODES) {
    it(`gives the reference's rows and greedy tokens with ${mode}`, async () => {
      const r = await s.engine.ask({ image: wide, question: 'What is it?', reduce: parseReduceMode(mode), detail: 'low', maxNewTokens: 4 });
      const ref = await referenceLow(s.ckpt, wide, mode);
      assert.equal(r.visual.kept, ref.rows.length);
      assert.equal(r.visual.total, 16 + 1);
      assert.equal(r.visual.visionRuns, 1);
      const encoded = await s.engine.encodeImage(wide, parseReduceMode(mode), {}, true, 'low');
      const flat = ref.rows.flatMap((row) => Array.from(row));
      assert.ok(relativeError(encoded.embeds, flat) < 1e-4, `visual rows differ: ${relativeError(encoded.embeds, flat)}`);
      if (mode !== 'none') assert.deepEqual(r.visual.indices, ref.kept[0]);
      assertReferenceTokens(s.ckpt, s.engine.manifest.tokenizer.imageTokenId, r, ref.rows);
    });
  }

  it('counts one crop and its newline without a vision run', async () => {
    const { total, subImages } = await s.engine.imageTokens(wide, 'low');
    assert.deepEqual({ total, subImages }, { total: 17, subImages: 1 });
  });

  it('starts a new conversation when the detail changes', async () => {
    const ask = (detail: 'auto' | 'low', followUp: boolean): Promise<AskResult> =>
      s.engine.ask({ image: wide, question: 'And?', reduce: parseReduceMode('prumerge'), detail, followUp, maxNewTokens: 2 });
    await ask('low', false);
    assert.equal((await ask('low', true)).conversation, 'continued');
    assert.equal((await ask('auto', true)).conversation, 'restarted');
  });

  it('is refused, in one line, by models without that reading', async () => {
    const next = await load(await tinyCheckpoint({ seed: 65, std: 0.3 }, () => {}, 'tiny-next'));
    await assert.rejects(
      next.engine.ask({ image: wide, question: 'Hi', reduce: parseReduceMode('prumerge'), detail: 'low', maxNewTokens: 1 }),
      /^DetailError: [^\n]+ has no low-detail reading: --detail low is for LLaVA-OneVision models \(use auto\)$/,
    );
    await next.engine.dispose();
  });
});

describe('model folders built before model families', () => {
  it('load as CLIP with CLS attention and give the same answer', async () => {
    const dir = join(scratchDir('old-folder'), 'model');
    await buildSynthetic('tiny-next', 66, { out: dir, dtype: 'fp32' });
    const ask = async (): Promise<AskResult> => {
      const engine = await Engine.load(dir, { ep: 'cpu' });
      try {
        return await engine.ask({ image: SCREENSHOT, question: 'Hi', reduce: parseReduceMode('prumerge'), maxNewTokens: 4 });
      } finally {
        await engine.dispose();
      }
    };
    const now = await ask();
    // model.json as the builder wrote it before families: no family, no patch score
    const path = join(dir, 'model.json');
    const m = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(m.vision.score, 'cls');
    delete m.family;
    delete m.vision.score;
    writeFileSync(path, JSON.stringify(m));
    const before = await ask();
    assert.deepEqual(before.tokens, now.tokens);
    assert.deepEqual(before.visual, now.visual);
  });
});
