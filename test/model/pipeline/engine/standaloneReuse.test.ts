/**
 * Standalone requests (VS Code's chat sends the whole conversation each time) continuing a kept
 * conversation: how much they reuse is set by the prompts (the previous prompt is a prefix of the
 * next), and every answer must equal the one a fresh engine gives the same request.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { MAX_STANDALONE } from '../../../../src/pipeline/engine/conversations';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import type { AskRequest } from '../../../../src/pipeline/engine/request';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import type { AskResult } from '../../../../src/shared/results';
import { scratchDir } from '../../../helpers/checkpoints';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const FIRST: AskRequest = {
  image: SAMPLE,
  question: 'What does this diagram show?',
  reduce: parseReduceMode('prumerge'),
  maxNewTokens: 6,
  standalone: true,
};

describe('engine: standalone conversations continue from a kept KV cache', () => {
  let engine: Engine;
  /** A fresh engine per reference answer would be slow; one whose pool is emptied before each is the same. */
  let fresh: Engine;
  let first: AskResult;
  const reference = async (request: AskRequest): Promise<number[]> => {
    await fresh.dispose();
    fresh = await Engine.load(demoModelDir(), { ep: 'cpu', visionCacheBytes: 0 });
    return (await fresh.ask(request)).tokens;
  };
  const second = (answer: string, question = 'And the arrows?', firstQuestion = FIRST.question): AskRequest => ({
    ...FIRST,
    question,
    history: [{ question: firstQuestion, answer }],
  });

  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    fresh = await Engine.load(demoModelDir(), { ep: 'cpu', visionCacheBytes: 0 });
    first = await engine.ask(FIRST);
    assert.ok(first.tokens.length > 0);
    assert.equal(first.conversation, 'new');
  });
  after(async () => {
    await engine.dispose();
    await fresh.dispose();
  });

  it('the same conversation extended reuses at least the previous prompt, reads no image, and answers as a fresh engine does', async () => {
    const request = second(first.answer);
    const r = await engine.ask(request);
    assert.equal(r.conversation, 'continued');
    assert.ok(r.reusedTokens >= first.promptTokens, `${r.reusedTokens} reused, the first prompt was ${first.promptTokens}`);
    assert.equal(r.timings.visionMs, 0);
    assert.deepEqual(r.tokens, await reference(request));
  });

  it('an edited earlier question reuses only up to where it differs, and answers as a fresh engine does', async () => {
    const base = await engine.ask(FIRST);
    const request = second(base.answer, 'And the arrows?', 'What does this picture show?');
    const r = await engine.ask(request);
    const prompt = first.inputIds;
    const edited = engine.prompt.ids([{ question: 'What does this picture show?' }], first.visual.kept).ids;
    let common = 0;
    while (prompt[common] === edited[common]) common++;
    assert.equal(r.reusedTokens, common, 'the prompts agree up to the edited word');
    assert.deepEqual(r.tokens, await reference(request));
  });

  it('another reading of the image, or new bytes under the same name, starts over', async () => {
    const other = await engine.ask({ ...second(first.answer), reduce: parseReduceMode('topk:16') });
    assert.equal(other.reusedTokens, 0);
    assert.equal(other.conversation, 'new');

    const path = join(scratchDir('standalone'), 'shot.png');
    const png = (colour: string): Promise<Buffer> =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: colour } })
        .png()
        .toBuffer();
    writeFileSync(path, await png('#204080'));
    const before = await engine.ask({ ...FIRST, image: path });
    writeFileSync(path, await png('#c04020'));
    const after = await engine.ask({ ...second(before.answer), image: path });
    assert.equal(after.reusedTokens, 0);
    assert.ok(after.timings.visionMs > 0, 'the new bytes were read');
  });

  it("keeps at most MAX_STANDALONE of them, and never evicts a window's own conversation", async () => {
    const owned: AskRequest = { ...FIRST, standalone: false, owner: 'window-1' };
    const start = await engine.ask(owned);
    const dir = scratchDir('standalone-many');
    for (let i = 0; i < MAX_STANDALONE + 2; i++) {
      const path = join(dir, `copy-${i}.svg`);
      copyFileSync(SAMPLE, path); // another file: another conversation
      await engine.ask({ ...FIRST, image: path });
      assert.ok(engine.standaloneKept.conversations <= MAX_STANDALONE);
    }
    assert.equal(engine.standaloneKept.conversations, MAX_STANDALONE);
    const follow = await engine.ask({ ...owned, question: 'And the arrows?', followUp: true });
    assert.equal(follow.conversation, 'continued');
    assert.ok(follow.reusedTokens >= start.promptTokens);
  });
});
