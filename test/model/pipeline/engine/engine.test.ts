/**
 * The engine end to end against an independent reference: float64 CLIP, the float64 PruMerge
 * transcription, the float64 projector and LLaMA, greedy decoding by recomputing the whole
 * sequence at every step (no cache). Same greedy tokens for every reduction mode.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { llavaConfigFromJson, LlavaConfig } from '../../../../src/families/llavaConfig';
import { shapeConfig } from '../../../../src/builder/shapes';
import { featureLayer } from '../../../../src/families/llavaConfig';
import { LM_HEAD, syntheticTensor } from '../../../../src/checkpoint/weights';
import { llavaTensors } from '../../../../src/families/llavaTensors';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { preprocessImage } from '../../../../src/pipeline/image/preprocess';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { DEMO_SEED, DEMO_SHAPE, DEMO_STD } from '../../../../src/builder/demoModel';
import { scratchDir, textRef, tinyCheckpoint, visionRef } from '../../../helpers/checkpoints';
import { referencePruMerge } from '../../../reference/prumergeReference';
import { clipVision, embedTokens, projector, Weights } from '../../../reference/llavaReference';
import { cdprunerReference, divpruneReference, relevanceReference, visprunerReference } from '../../../reference/selectionReference';
import { assertSameGreedy, referenceGreedy } from '../../../helpers/greedy';
import { RepetitionGuard } from '../../../../src/pipeline/text/generate';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const MODES = ['none', 'prumerge', 'prumerge+', 'topk:8'] as const;
const SELECTIONS = ['cdpruner:8', 'divprune:8', 'vispruner:8'] as const;
const QUESTION = 'What does this diagram show?';

interface Subject {
  readonly engine: Engine;
  readonly config: LlavaConfig;
  readonly weights: Weights;
}

function syntheticWeights(config: LlavaConfig, seed: number, std: number): Weights {
  const specs = new Map(llavaTensors(config).map((s) => [s.name, s]));
  const cache = new Map<string, Float32Array>();
  return (name) => {
    let d = cache.get(name);
    if (!d) cache.set(name, (d = syntheticTensor(specs.get(name)!, seed, std)));
    return d;
  };
}

/** The reference answer: visual tokens, then greedy tokens recomputed from scratch each step. */
async function referenceTokens(
  s: Subject,
  mode: (typeof MODES)[number] | (typeof SELECTIONS)[number],
  inputIds: number[],
  steps: number,
): Promise<{ tokens: number[]; margins: number[]; visual: number[] }> {
  const pre = await preprocessImage(SAMPLE, { config: s.engine.manifest.preprocess });
  const vis = clipVision(visionRef(s.config), s.weights, pre.pixelValues);
  const f = featureLayer(s.config);
  const hidden = vis.hiddenStates[f]!.map((r) => Array.from(r));
  const project = (rows: number[][]): Float64Array[] =>
    projector(
      s.weights,
      rows.map((r) => Float64Array.from(r)),
      s.config.text.hiddenSize,
      s.config.projectorHiddenAct,
    );
  const greedy = (visual: Float64Array[]) =>
    referenceGreedy(textRef(s.config), s.weights, inputIds, s.engine.manifest.tokenizer.imageTokenId, visual, steps);
  if (mode === 'cdpruner:8' || mode === 'divprune:8' || mode === 'vispruner:8') {
    // the selections choose among every patch's projector row (VisPruner: by CLS attention and features), in patch order
    const rows = project(hidden.slice(1)).map((r) => Array.from(r));
    const q = vis.q[f]!.map((r) => Array.from(r));
    const k = vis.k[f]!.map((r) => Array.from(r));
    const ids = s.engine.prompt.tokenizer.encode(QUESTION, { add_special_tokens: false }).ids;
    const chosen =
      mode === 'divprune:8'
        ? divpruneReference(rows, 8)
        : mode === 'cdpruner:8'
          ? cdprunerReference(
              rows,
              relevanceReference(
                [rows],
                embedTokens(textRef(s.config), s.weights, ids).map((r) => Array.from(r)),
              )[0]!,
              8,
            )
          : visprunerReference(hidden.slice(1), referencePruMerge(hidden, q, k, { topk: 1 }).attention, 8);
    const kept = [...chosen].sort((a, b) => a - b);
    return { ...greedy(kept.map((p) => Float64Array.from(rows[p]!))), visual: kept };
  }
  let features: number[][];
  let kept: number[];
  if (mode === 'none') {
    features = hidden.slice(1);
    kept = features.map((_, i) => i);
  } else {
    const r = referencePruMerge(
      hidden,
      vis.q[f]!.map((r) => Array.from(r)),
      vis.k[f]!.map((r) => Array.from(r)),
      mode === 'topk:8' ? { topk: 8 } : mode,
    );
    features = r.features;
    kept = r.kept;
  }
  return { ...greedy(project(features)), visual: kept };
}

function describeEngine(label: string, load: () => Promise<Subject>): void {
  describe(label, () => {
    let s: Subject;
    before(async () => {
      s = await load();
    });

    for (const mode of [...MODES, ...SELECTIONS]) {
      it(`gives the reference's greedy tokens with ${mode}`, async () => {
        const r = await s.engine.ask({
          image: SAMPLE,
          question: QUESTION,
          reduce: parseReduceMode(mode),
          maxNewTokens: 6,
        });
        assert.equal(r.inputIds[0], s.engine.manifest.tokenizer.bosTokenId);
        const ref = await referenceTokens(s, mode, r.inputIds, r.tokens.length);
        assert.deepEqual(r.visual.indices, ref.visual);
        assert.equal(r.visual.total, s.engine.manifest.vision.grid ** 2);
        assert.ok(r.tokens.length > 0);
        assertSameGreedy(r, ref);
      });
    }

    it('answers a follow-up from the KV cache with the tokens a fresh pass gives', async () => {
      const first = await s.engine.ask({
        image: SAMPLE,
        question: 'What does this diagram show?',
        reduce: parseReduceMode('prumerge'),
        maxNewTokens: 5,
      });
      const follow = await s.engine.ask({
        image: SAMPLE,
        question: 'And the green box?',
        reduce: parseReduceMode('prumerge'),
        maxNewTokens: 5,
        followUp: true,
      });
      assert.ok(follow.reusedTokens >= first.promptTokens, `reused ${follow.reusedTokens} of ${follow.promptTokens}`);
      assert.equal(follow.timings.visionMs, 0, 'the image is not encoded again');
      assert.deepEqual(follow.inputIds.slice(0, first.promptTokens), first.inputIds);
      const ref = await referenceTokens(s, 'prumerge', follow.inputIds, follow.tokens.length);
      assertSameGreedy(follow, ref);
    });

    it('answers a question without an image: no image slot, the reference text model alone', async () => {
      const r = await s.engine.ask({ question: 'What is a diagram?', reduce: parseReduceMode('prumerge'), maxNewTokens: 5 });
      const imageId = s.engine.manifest.tokenizer.imageTokenId;
      assert.ok(!r.inputIds.includes(imageId));
      assert.deepEqual(r.visual, { total: 0, kept: 0, indices: [], visionRuns: 0 });
      assert.equal(r.timings.visionMs, 0);
      assert.ok(r.tokens.length > 0);
      assertSameGreedy(r, referenceGreedy(textRef(s.config), s.weights, r.inputIds, imageId, [], r.tokens.length));
    });

    it('stops when cancelled and then answers the next question', async () => {
      const controller = new AbortController();
      let pieces = 0;
      const stopped = await s.engine.ask(
        { image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('prumerge'), maxNewTokens: 50 },
        {
          onText: () => {
            pieces++;
            controller.abort();
          },
          signal: controller.signal,
        },
      );
      assert.equal(stopped.stopReason, 'cancelled');
      assert.ok(stopped.tokens.length <= 3 && pieces >= 1);
      const next = await s.engine.ask({ image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('prumerge'), maxNewTokens: 3 });
      assert.ok(next.tokens.length > 0);
    });

    it('refuses an empty question and a conversation longer than the context', async () => {
      await assert.rejects(s.engine.ask({ image: SAMPLE, question: '   ', reduce: parseReduceMode('prumerge') }), /question is empty/);
      const long = 'why '.repeat(s.engine.manifest.decoder.maxPositions);
      await assert.rejects(
        s.engine.ask({ image: SAMPLE, question: long, reduce: parseReduceMode('prumerge') }),
        /tokens long, the model takes \d+/,
      );
    });
  });
}

describeEngine('engine on the demo model (24 x 24 grid)', async () => {
  const configJson = shapeConfig(DEMO_SHAPE);
  const config = llavaConfigFromJson(configJson);
  return { engine: await Engine.load(demoModelDir(), { ep: 'cpu' }), config, weights: syntheticWeights(config, DEMO_SEED, DEMO_STD) };
});

describeEngine('engine on a tiny random checkpoint (4 x 4 grid, GQA)', async () => {
  const ckpt = await tinyCheckpoint({ seed: 41, std: 0.3 });
  const dir = join(scratchDir('engine'), 'tiny');
  await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
  return { engine: await Engine.load(dir, { ep: 'cpu' }), config: ckpt.config, weights: ckpt.weights };
});

describe('generation on a real (not random-weights) checkpoint', () => {
  // A real model may rightly repeat itself (a table's rule row, a row of zeros): only the budget, the
  // end of sequence, the context and Stop end its answer. This checkpoint's output head is its
  // embedding table, scaled, over weak layers: each token's own row scores highest, so greedy
  // decoding says the same token again and again, which the repetition stop would cut at 4.
  it('runs a continuation that repeats to the whole budget, token for token as the reference', async () => {
    const ckpt = await tinyCheckpoint({
      seed: 41,
      std: 0.02,
      override: (name, random) => (name === LM_HEAD ? random('language_model.model.embed_tokens.weight').map((x) => 20 * x) : undefined),
    });
    const dir = join(scratchDir('engine'), 'tiny');
    await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
    const s: Subject = { engine: await Engine.load(dir, { ep: 'cpu' }), config: ckpt.config, weights: ckpt.weights };
    try {
      assert.equal(s.engine.manifest.randomWeights, false);
      const budget = 40;
      const r = await s.engine.ask({ image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('topk:8'), maxNewTokens: budget });
      const ref = await referenceTokens(s, 'topk:8', r.inputIds, budget);
      const guard = new RepetitionGuard();
      const loopsAt = ref.tokens.findIndex((t) => guard.push(t));
      assert.ok(loopsAt >= 0 && loopsAt < budget - 1, `the reference repeats itself within the budget (at ${loopsAt})`);
      const eos = ref.tokens.indexOf(s.engine.manifest.tokenizer.eosTokenId);
      assert.notEqual(r.stopReason, 'repetition');
      assert.equal(r.tokens.length, eos >= 0 ? eos : budget);
      assertSameGreedy(r, ref);
    } finally {
      await s.engine.dispose();
    }
  });

  it('still stops a random-weights model that loops (the demo)', async () => {
    const engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    try {
      assert.equal(engine.manifest.randomWeights, true);
      const r = await engine.ask({ image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('topk:8'), maxNewTokens: 200 });
      const guard = new RepetitionGuard();
      const loopsAt = r.tokens.findIndex((t) => guard.push(t));
      // whatever the demo writes: a loop in it ends the answer right there
      if (loopsAt >= 0) {
        assert.equal(r.stopReason, 'repetition');
        assert.equal(loopsAt, r.tokens.length - 1);
      } else assert.notEqual(r.stopReason, 'repetition');
    } finally {
      await engine.dispose();
    }
  });
});
