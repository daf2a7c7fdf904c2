/**
 * The engine when the user changes their mind: Stop pressed at every stage of the pipeline, a
 * queued question cancelled before its turn, many questions at once, and an image file that
 * changes or disappears between questions. The expected tokens come from uninterrupted runs of
 * the same questions (greedy decoding is deterministic), not from the interrupted ones.
 */
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { AskRequest } from '../../../../src/pipeline/engine/request';
import { AskStage } from '../../../../src/shared/results';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { scratchDir } from '../../../helpers/checkpoints';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
/** Pipeline order, as the issue names the stages. */
const STAGES: AskStage[] = ['preprocess', 'vision', 'reduce', 'projector', 'prefill', 'decode'];
// all 576 visual tokens: the prompt spans several prefill chunks
const ASK: AskRequest = { image: SAMPLE, question: 'What does this diagram show?', reduce: parseReduceMode('none'), maxNewTokens: 4 };
const FOLLOW: AskRequest = { ...ASK, question: 'And the boxes?', followUp: true };

describe('engine: Stop at every stage, queued and repeated questions, changed images', () => {
  let engine: Engine;
  let first: number[];
  let followed: number[];
  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    first = (await engine.ask(ASK)).tokens;
    followed = (await engine.ask(FOLLOW)).tokens;
    assert.ok(first.length > 0 && followed.length > 0);
  });
  after(() => engine.dispose());

  it('reports the stages in pipeline order, and only decoding for a follow-up', async () => {
    const seen: AskStage[] = [];
    await engine.ask(ASK, { onStage: (s) => seen.push(s) });
    assert.deepEqual(seen, STAGES);
    seen.length = 0;
    await engine.ask(FOLLOW, { onStage: (s) => seen.push(s) });
    assert.deepEqual(seen, ['prefill', 'decode']);
  });

  for (const [i, stage] of STAGES.entries()) {
    it(`Stop during ${stage}: no later stage starts, no token is written, the next question is answered in full`, async () => {
      const seen: AskStage[] = [];
      const controller = new AbortController();
      let text = '';
      const r = await engine.ask(ASK, {
        onStage: (s) => {
          seen.push(s);
          if (s === stage) controller.abort();
        },
        onText: (d) => (text += d),
        signal: controller.signal,
      });
      assert.equal(r.stopReason, 'cancelled');
      assert.deepEqual(r.tokens, []);
      assert.equal(text, '');
      assert.deepEqual(seen, STAGES.slice(0, i + 1));
      assert.deepEqual((await engine.ask(ASK)).tokens, first);
    });
  }

  it('a follow-up stopped during prefill leaves the conversation as it was', async () => {
    await engine.ask(ASK);
    const controller = new AbortController();
    const stopped = await engine.ask(FOLLOW, { onStage: (s) => s === 'prefill' && controller.abort(), signal: controller.signal });
    assert.equal(stopped.stopReason, 'cancelled');
    const again = await engine.ask(FOLLOW);
    assert.equal(again.conversation, 'continued');
    assert.deepEqual(again.tokens, followed, 'the same tokens as the uninterrupted follow-up');
  });

  it('a question cancelled while it waits its turn never starts; the one before it finishes', async () => {
    const controller = new AbortController();
    const seen: AskStage[] = [];
    const running = engine.ask(ASK);
    const queued = engine.ask({ ...ASK, question: 'Another question' }, { onStage: (s) => seen.push(s), signal: controller.signal });
    controller.abort();
    const [a, b] = await Promise.all([running, queued]);
    assert.deepEqual(a.tokens, first);
    assert.equal(b.stopReason, 'cancelled');
    assert.deepEqual(seen, []);
  });

  it('twelve questions at once are answered one after another, each as if asked alone', async () => {
    const questions = Array.from({ length: 12 }, (_, i) =>
      i % 2 ? ASK : { ...ASK, question: 'Describe the colours.', reduce: parseReduceMode('prumerge') },
    );
    const alone: number[][] = [];
    for (const q of questions.slice(0, 2)) alone.push((await engine.ask(q)).tokens);
    const all = await Promise.all(questions.map((q) => engine.ask(q)));
    all.forEach((r, i) => assert.deepEqual(r.tokens, alone[i % 2 ? 1 : 0], `question ${i}`));
  });

  it('answers about the image as it is now when the file changed since the last answer', async () => {
    const dir = scratchDir('changed-image');
    const file = join(dir, 'shot.png');
    const other = join(dir, 'other.png');
    await sharp(SAMPLE).png().toFile(file);
    await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 200, g: 40, b: 40 } } })
      .composite([
        { input: { create: { width: 100, height: 100, channels: 3, background: { r: 10, g: 200, b: 30 } } }, left: 150, top: 50 },
      ])
      .png()
      .toFile(other);
    const before = await engine.ask({ ...ASK, image: file });
    copyFileSync(other, file);
    utimesSync(file, new Date(), new Date(Date.now() + 5000)); // a later modification time, whatever the clock's resolution
    const after = await engine.ask({ ...FOLLOW, image: file });
    assert.equal(after.conversation, 'restarted');
    const fresh = await engine.ask({ ...FOLLOW, image: other, followUp: false });
    assert.deepEqual(after.tokens, fresh.tokens, 'the answer of a new conversation about the new image');
    assert.notDeepEqual(before.inputIds, []);

    rmSync(file);
    await assert.rejects(engine.ask({ ...FOLLOW, image: file }), /shot\.png does not exist/);
    writeFileSync(file, 'not an image');
    await assert.rejects(engine.ask({ ...FOLLOW, image: file }), /not an image|unsupported|cannot read/i);
  });
});
