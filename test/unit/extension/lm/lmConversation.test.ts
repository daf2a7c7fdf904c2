/** VS Code's language-model messages -> the engine's question, history and image. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LmMessage, lmQuestion } from '../../../../src/extension/lm/lmConversation';
import { imageTokenEstimate } from '../../../../src/extension/lm/tokenCounts';

const png = (n: number): { kind: 'image'; mimeType: string; data: Uint8Array } => ({
  kind: 'image',
  mimeType: 'image/png',
  data: Uint8Array.of(n),
});
const text = (t: string): { kind: 'text'; text: string } => ({ kind: 'text', text: t });
const user = (...parts: LmMessage['parts']): LmMessage => ({ role: 'user', parts });
const assistant = (t: string): LmMessage => ({ role: 'assistant', parts: [text(t)] });

describe('language-model messages', () => {
  it('take the last user message as the question and the image wherever it came', () => {
    const q = lmQuestion([user(png(1), text('What is it?'))]);
    assert.equal(q.question, 'What is it?');
    assert.deepEqual(q.history, []);
    assert.equal(q.images.length, 1);
    assert.equal(q.images[0]!.mimeType, 'image/png');
    assert.deepEqual(Array.from(q.images[0]!.data), [1]);
  });

  it('turn earlier exchanges into history, and join consecutive user messages', () => {
    const q = lmQuestion([user(png(1), text('What is it?')), assistant('A diagram.'), user(text('Which boxes')), user(text('are green?'))]);
    assert.deepEqual(q.history, [{ question: 'What is it?', answer: 'A diagram.' }]);
    assert.equal(q.question, 'Which boxes\n\nare green?');
    assert.equal(q.images.length, 1);
  });

  it('put system text before the first question, since LLaVA templates have no system turn', () => {
    const q = lmQuestion([{ role: 'system', parts: [text('Answer briefly.')] }, user(text('Hi'))]);
    assert.equal(q.question, 'Answer briefly.\n\nHi');
  });

  it('answer without an image when none is attached', () => {
    assert.deepEqual(lmQuestion([user(text('Hello'))]).images, []);
  });

  it('keep every image of the conversation, in the order they came', () => {
    const q = lmQuestion([user(png(1), png(2), text('a')), assistant('b'), user(png(3), text('c'))]);
    assert.deepEqual(
      q.images.map((i) => Array.from(i.data)),
      [[1], [2], [3]],
    );
  });

  it('refuse more images than the model reads, an image type it cannot decode, and a conversation not ending with a question', () => {
    assert.throws(
      () => lmQuestion([user(png(1), png(2), png(3), text('a')), assistant('b'), user(png(4), png(5), text('c'))]),
      /holds 5 images, and the model reads at most 4 in one conversation/,
    );
    assert.throws(
      () => lmQuestion([user({ kind: 'image', mimeType: 'image/svg+xml', data: Uint8Array.of(1) }, text('a'))]),
      /images of type image\/svg\+xml cannot be read/,
    );
    assert.throws(() => lmQuestion([user(text('a')), assistant('b')]), /must end with a question from the user/);
    assert.throws(() => lmQuestion([user(png(1))]), /the question is empty/);
  });

  it('ignore what the model does not read (tool calls, other data)', () => {
    const q = lmQuestion([user({ kind: 'other', what: 'LanguageModelToolResultPart' }, text('Hi'))]);
    assert.equal(q.question, 'Hi');
  });
});

describe("an image's tokens in a request", () => {
  it('are every token where the reduction keeps an unknown number, and at most K + 1 per part with topk:K', () => {
    const next = { total: 2340, subImages: 5 };
    assert.equal(imageTokenEstimate(next, { kind: 'prumerge' }), 2340);
    assert.equal(imageTokenEstimate(next, { kind: 'none' }), 2340);
    assert.equal(imageTokenEstimate(next, { kind: 'topk', k: 32 }), 5 * 33);
    assert.equal(imageTokenEstimate({ total: 16, subImages: 1 }, { kind: 'topk', k: 32 }), 16);
  });

  it('are T per part for the selections, and the windows of pool:K', () => {
    const next = { total: 2340, subImages: 5 };
    assert.equal(imageTokenEstimate(next, { kind: 'cdpruner', k: 32 }), 5 * 32);
    assert.equal(imageTokenEstimate({ total: 576, subImages: 1 }, { kind: 'random', k: 600 }), 576);
    // 24 x 24 patches in 2 x 2 windows: 12 x 12; SigLIP's 27 x 27: 14 x 14
    assert.equal(imageTokenEstimate({ total: 576, subImages: 1 }, { kind: 'pool', k: 2 }), 144);
    assert.equal(imageTokenEstimate({ total: 729 * 2, subImages: 2 }, { kind: 'pool', k: 2 }), 2 * 196);
  });
});
