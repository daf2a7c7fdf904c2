/**
 * Several images in one question, on a tiny LLaVA-OneVision: the prompt as the chat template
 * renders it (@huggingface/jinja, here), each image read as one padded crop and reduced on its
 * own (the float64 reference per image), greedy tokens equal the float64 reference's; the limit
 * and an unreadable image among several refused in one line; LLaVA-1.5 takes several too.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Template } from '@huggingface/jinja';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { MAX_IMAGES } from '../../../../src/shared/reductionChoices';
import { scratchDir, TinyCheckpoint, tinyCheckpoint } from '../../../helpers/checkpoints';
import { assertReferenceTokens } from '../../../helpers/greedy';
import { noisePng } from '../../../helpers/images';
import { MODES, referenceLow } from '../../../helpers/onevision';

const QUESTION = 'What changed between these?';
const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');

describe('several images in one question (LLaVA-OneVision)', () => {
  let engine: Engine;
  let ckpt: TinyCheckpoint;
  let images: string[];
  before(async () => {
    ckpt = await tinyCheckpoint({ seed: 71, std: 0.3 }, () => {}, 'tiny-onevision');
    const dir = join(scratchDir('several'), 'model');
    await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp32' });
    engine = await Engine.load(dir, { ep: 'cpu' });
    images = [await noisePng(150, 90, 21), await noisePng(70, 120, 22)];
  });
  after(() => engine.dispose());

  it('puts the images where the chat template puts them, each with its own rows', async () => {
    const r = await engine.ask({ images, question: QUESTION, reduce: parseReduceMode('prumerge'), maxNewTokens: 2 });
    const rendered = new Template(engine.manifest.chatTemplate).render({
      messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: QUESTION }] }],
      add_generation_prompt: true,
      bos_token: '<s>',
      eos_token: '</s>',
    });
    const image = engine.manifest.tokenizer.imageTokenId;
    const plain = engine.prompt.tokenizer.encode(rendered, { add_special_tokens: true }).ids;
    const each = r.visual.images!.map((v) => v.kept);
    let k = 0;
    const expected = plain.flatMap((id) => (id === image ? new Array<number>(each[k++]!).fill(image) : [id]));
    assert.equal(k, 2, 'the template placed two images');
    assert.deepEqual(r.inputIds, expected);
    assert.equal(r.visual.kept, each[0]! + each[1]!);
  });

  for (const mode of MODES) {
    it(`reads each as one padded crop, reduced on its own, and gives the reference's greedy tokens with ${mode}`, async () => {
      const r = await engine.ask({ images, question: QUESTION, reduce: parseReduceMode(mode), maxNewTokens: 4 });
      const refs = await Promise.all(images.map((i) => referenceLow(ckpt, i, mode)));
      assert.deepEqual(
        r.visual.images!.map((v) => [v.total, v.kept, v.visionRuns]),
        refs.map((ref) => [16 + 1, ref.rows.length, 1]),
      );
      if (mode !== 'none')
        assert.deepEqual(
          r.visual.images!.map((v) => v.indices),
          refs.map((ref) => ref.kept[0]),
        );
      assertReferenceTokens(ckpt, engine.manifest.tokenizer.imageTokenId, r, [...refs[0]!.rows, ...refs[1]!.rows]);
    });
  }

  it('continues a follow-up about the same images, and starts over when they change', async () => {
    const ask = (pictures: string[], followUp: boolean) =>
      engine.ask({ images: pictures, question: 'And?', reduce: parseReduceMode('prumerge'), followUp, maxNewTokens: 2 });
    const first = await ask(images, false);
    const next = await ask(images, true);
    assert.equal(next.conversation, 'continued');
    assert.ok(next.reusedTokens >= first.promptTokens);
    const swapped = await ask([images[1]!, images[0]!], true);
    assert.equal(swapped.conversation, 'restarted');
    assert.equal(swapped.restartedBy, 'image');
  });

  it(`refuses more than ${MAX_IMAGES} images, and names the unreadable one among several, in one line`, async () => {
    await assert.rejects(
      engine.ask({ images: new Array<string>(MAX_IMAGES + 1).fill(images[0]!), question: QUESTION, reduce: parseReduceMode('prumerge') }),
      new RegExp(`^EngineError: [^\\n]+ takes at most ${MAX_IMAGES} images in one question; this one has ${MAX_IMAGES + 1}[^\\n]*$`),
    );
    const broken = join(scratchDir('several-broken'), 'broken.png');
    writeFileSync(broken, 'not a png');
    await assert.rejects(
      engine.ask({ images: [images[0]!, broken], question: QUESTION, reduce: parseReduceMode('prumerge') }),
      /^ImageInputError: image 2 of 2: \S*broken\.png is not an image[^\n]*$/,
    );
  });
});

describe('several images on a model trained on one (LLaVA-1.5, the demo model)', () => {
  it('reads each in full, in order, with its own counts', async () => {
    const engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    try {
      const one = await engine.ask({ image: SAMPLE, question: QUESTION, reduce: parseReduceMode('topk:8'), maxNewTokens: 2 });
      const two = await engine.ask({ images: [SAMPLE, SAMPLE], question: QUESTION, reduce: parseReduceMode('topk:8'), maxNewTokens: 2 });
      assert.deepEqual(
        two.visual.images!.map((v) => [v.total, v.kept, v.indices]),
        [0, 1].map(() => [one.visual.total, one.visual.kept, one.visual.indices]),
      );
      assert.equal(two.inputIds.filter((id) => id === engine.manifest.tokenizer.imageTokenId).length, 2 * one.visual.kept);
    } finally {
      await engine.dispose();
    }
  });
});
