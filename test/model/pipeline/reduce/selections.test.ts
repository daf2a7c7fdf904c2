/**
 * CDPruner, VisPruner, DivPrune and the baselines end to end on the demo model (LLaVA-1.5 layout)
 * and a tiny LLaVA-OneVision (tiles, SigLIP): the rows the language model reads are the projector's
 * rows at the reference's kept patches, chosen among the rows all the patches give; and on random
 * inputs of the real models' sizes (576 x 4096, 729 x 896), the references agree.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { cdpruner, divprune, normaliseRelevance, relevance } from '../../../../src/pipeline/reduce/diversity';
import { vispruner } from '../../../../src/pipeline/reduce/vispruner';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { scratchDir, tinyCheckpoint } from '../../../helpers/checkpoints';
import { noisePng } from '../../../helpers/images';
import { randomFloat32Rows } from '../../../helpers/randomMatrix';
import {
  cdprunerReference,
  divpruneReference,
  Matrix,
  relevanceReference,
  visprunerReference,
} from '../../../reference/selectionReference';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const QUESTION = 'Which box merges the tokens?';

/** Rows of a (n, d) array as a matrix. */
function rowsOf(x: Float32Array, d: number): Matrix {
  return Array.from({ length: x.length / d }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)));
}

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

describe('the selections on the demo model: the projector rows at the reference kept patches', () => {
  let engine: Engine;
  /** Every patch's projector row, features and CLS attention, from the unreduced reading. */
  let all: { embeds: Matrix; features: Matrix; attention: number[] };
  const hidden = (): number => engine.manifest.decoder.hiddenSize;

  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    const none = await engine.encodeImage(SAMPLE, parseReduceMode('none'));
    const r = none.subImages[0]!.reduction;
    all = { embeds: rowsOf(none.embeds, hidden()), features: rowsOf(r.features, r.width), attention: Array.from(r.attention) };
  });
  after(() => engine.dispose());

  const check = async (mode: string, expected: number[], question?: Float64Array): Promise<void> => {
    const encoded = await engine.encodeImage(SAMPLE, parseReduceMode(mode), {}, true, 'auto', question);
    const kept = Array.from(encoded.subImages[0]!.reduction.kept);
    assert.deepEqual(kept, sorted(expected), mode);
    const rows = rowsOf(encoded.embeds, hidden());
    assert.equal(rows.length, kept.length);
    rows.forEach((row, i) => row.forEach((v, c) => assert.ok(Math.abs(v - all.embeds[kept[i]!]![c]!) < 1e-4, `${mode} row ${i}`)));
  };

  it('divprune:24 keeps the reference choice among all 576 projector rows', () => check('divprune:24', divpruneReference(all.embeds, 24)));

  it('vispruner:24 keeps the reference choice from the CLS attention and the features', () =>
    check('vispruner:24', visprunerReference(all.features, all.attention, 24)));

  it('cdpruner:24 weighs the rows by the question: the reference with the mean of its token embeddings', async () => {
    // the question's own tokens, read from the table on disk: the mean row CDPruner compares with
    const ids = engine.prompt.tokenizer.encode(QUESTION, { add_special_tokens: false }).ids;
    const [vocab, width] = engine.manifest.embeddings.shape;
    const table = readFileSync(join(demoModelDir(), engine.manifest.embeddings.file));
    assert.equal(table.length, vocab * width * 4);
    const rowsFor = (text: string): Matrix =>
      engine.prompt.tokenizer
        .encode(text, { add_special_tokens: false })
        .ids.map((id) => Array.from({ length: width }, (_, c) => table.readFloatLE((id * width + c) * 4)));
    const question = rowsFor(QUESTION);
    assert.equal(question.length, ids.length);
    const r = relevanceReference([all.embeds], question)[0]!;
    await check('cdpruner:24', cdprunerReference(all.embeds, r, 24), await engine.questionEmbedding(QUESTION));
    // asked through the engine, the question is the one weighed
    const asked = await engine.ask({ image: SAMPLE, question: QUESTION, reduce: parseReduceMode('cdpruner:24'), maxNewTokens: 1 });
    assert.deepEqual(asked.visual.indices, sorted(cdprunerReference(all.embeds, r, 24)));
    // the heatmap of that answer: the same patches, coloured by the reference's relevance
    const inspected = await engine.inspect(SAMPLE, parseReduceMode('cdpruner:24'), {}, 'auto', QUESTION);
    assert.deepEqual(inspected.kept, sorted(cdprunerReference(all.embeds, r, 24)));
    assert.equal(inspected.question, QUESTION);
    assert.equal(inspected.relevance!.length, 576);
    inspected.relevance!.forEach((v, p) => assert.ok(Math.abs(v - r[p]!) < 1e-4, `patch ${p}: ${v} against ${r[p]}`));
    // a follow-up that reads the conversation again (the chat's CDPruner follow-ups) chooses for its own question
    const second = 'And the colours of the arrows?';
    const followed = await engine.ask({
      image: SAMPLE,
      question: second,
      history: [{ question: QUESTION, answer: 'The middle one.' }],
      reduce: parseReduceMode('cdpruner:24'),
      maxNewTokens: 1,
    });
    const r2 = relevanceReference([all.embeds], rowsFor(second))[0]!;
    assert.deepEqual(followed.visual.indices, sorted(cdprunerReference(all.embeds, r2, 24)));
    assert.notDeepEqual(followed.visual.indices, asked.visual.indices, 'another question weighs other patches');
    // without a question every patch weighs alike, and the inspection says nothing of relevance
    const alike = await engine.inspect(SAMPLE, parseReduceMode('cdpruner:24'));
    assert.equal(alike.relevance, undefined);
    assert.equal(alike.question, undefined);
    assert.deepEqual(alike.kept, sorted(cdprunerReference(all.embeds, new Array<number>(576).fill(1), 24)));
  });

  it('random:24 keeps 24 distinct patches, the same each time', async () => {
    const a = await engine.encodeImage(SAMPLE, parseReduceMode('random:24'));
    const b = await engine.encodeImage(SAMPLE, parseReduceMode('random:24'));
    assert.equal(new Set(a.subImages[0]!.reduction.kept).size, 24);
    assert.deepEqual(a.subImages[0]!.reduction.kept, b.subImages[0]!.reduction.kept);
    await check('random:24', Array.from(a.subImages[0]!.reduction.kept));
  });

  it('pool:2 gives the 12 x 12 window means of the features', async () => {
    const r = (await engine.encodeImage(SAMPLE, parseReduceMode('pool:2'))).subImages[0]!.reduction;
    assert.equal(r.rows, 144);
    // window (row 3, column 5) holds patches (6, 10) (6, 11) (7, 10) (7, 11) of the 24 x 24 grid
    const window = 3 * 12 + 5;
    const members = [6 * 24 + 10, 6 * 24 + 11, 7 * 24 + 10, 7 * 24 + 11];
    for (let c = 0; c < r.width; c++) {
      const mean = members.reduce((s, p) => s + all.features[p]![c]!, 0) / 4;
      assert.ok(Math.abs(r.features[window * r.width + c]! - mean) < 1e-5);
    }
  });
});

describe('the selections on a tiled model (tiny LLaVA-OneVision): per crop, over its valid patches', () => {
  let engine: Engine;
  let image: string;
  before(async () => {
    const ckpt = await tinyCheckpoint({ seed: 72, std: 0.3 }, () => {}, 'tiny-onevision');
    const dir = join(scratchDir('selections'), 'model');
    await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
    engine = await Engine.load(dir, { ep: 'cpu' });
    image = await noisePng(150, 90, 23); // wide: tiles with padding that unpadding removes
  });
  after(() => engine.dispose());

  for (const mode of ['cdpruner:3', 'vispruner:3', 'divprune:3', 'random:3', 'pool:2']) {
    it(`${mode}: each crop keeps at most its budget, among its valid patches, and the answer reads those rows`, async () => {
      const encoded = await engine.encodeImage(image, parseReduceMode(mode), {}, true, 'auto', await engine.questionEmbedding(QUESTION));
      assert.ok(encoded.subImages.length > 1, 'an overview and tiles');
      for (const s of encoded.subImages) {
        const valid = new Set(s.valid);
        assert.ok(s.reduction.kept.every((p) => valid.has(p)));
        if (!mode.startsWith('pool')) assert.equal(s.reduction.kept.length, Math.min(3, s.valid.length));
      }
      const rows = encoded.subImages.reduce((n, s) => n + s.reduction.rows, 0);
      assert.equal(encoded.rows, rows, 'no newline rows, no downsampling: the kept rows only');
      const r = await engine.ask({ image, question: QUESTION, reduce: parseReduceMode(mode), maxNewTokens: 2 });
      assert.equal(r.visual.kept, rows);
    });
  }

  it("cdpruner's heatmap: relevance scaled over all the crops together, 0 outside the valid patches", async () => {
    const r = await engine.inspect(image, parseReduceMode('cdpruner:3'), {}, 'auto', QUESTION);
    const subs = r.subImages!;
    const valid = subs.flatMap((s) => s.valid.map((p) => s.relevance![p]!));
    // (x - min) / (max - min + 1e-6): one 0 and one just under 1 among every crop's valid patches
    assert.equal(Math.min(...valid), 0);
    assert.ok(Math.abs(Math.max(...valid) - 1) < 1e-5);
    // not each crop on its own: a crop holding neither extreme spans less than 0..1
    const spans = subs.map((s) => s.valid.map((p) => s.relevance![p]!)).map((v) => [Math.min(...v), Math.max(...v)] as const);
    assert.ok(spans.length > 2 && spans.some(([lo, hi]) => lo > 1e-3 || hi < 1 - 1e-3), JSON.stringify(spans));
    for (const s of subs) {
      const inside = new Set(s.valid);
      s.relevance!.forEach((v, p) => inside.has(p) || assert.equal(v, 0));
    }
  });
});

describe('the selections against the references at the real models sizes', () => {
  const random = randomFloat32Rows;

  it('576 x 4096 (LLaVA-1.5-7B projector rows): DivPrune, CDPruner and VisPruner', () => {
    const { flat, m } = random(576, 4096, 3);
    assert.deepEqual(Array.from(divprune(flat, 576, 4096, 16).order), divpruneReference(m, 16));
    const q = random(5, 4096, 4).m;
    const r = relevanceReference([m], q)[0]!;
    const mean = Float64Array.from(q[0]!, (_, c) => q.reduce((s, row) => s + row[c]!, 0) / q.length);
    const ours = normaliseRelevance([relevance(flat, 576, 4096, mean)])[0]!;
    assert.deepEqual(Array.from(cdpruner(flat, 576, 4096, ours, 16).order), cdprunerReference(m, r, 16));
    const score = random(1, 576, 5).m[0]!;
    assert.deepEqual(Array.from(vispruner(flat, 576, 4096, score, 64).order), visprunerReference(m, score, 64));
  });

  it('729 x 896 (LLaVA-OneVision-0.5B projector rows): DivPrune and CDPruner', () => {
    const { flat, m } = random(729, 896, 6);
    assert.deepEqual(Array.from(divprune(flat, 729, 896, 16).order), divpruneReference(m, 16));
    const ones = new Array<number>(729).fill(1);
    assert.deepEqual(Array.from(cdpruner(flat, 729, 896, ones, 16).order), cdprunerReference(m, ones, 16));
  });
});
