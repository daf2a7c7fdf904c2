/** The figures under an answer, worked by hand. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { answerFigures } from '../../../src/shared/answerFigures';
import type { AnswerStats } from '../../../src/shared/webviewMessages';

const stats: AnswerStats = {
  visualTokens: 59,
  totalVisualTokens: 576,
  ttftMs: 118.6,
  tokensPerSecond: 32.94,
  ep: 'cpu',
  stopReason: 'length',
  reduce: 'prumerge',
  tokens: 24,
};

it('give the kept tokens of all, how many times fewer, and the timings', () => {
  // 576 / 59 = 9.76: one decimal under 10x
  assert.equal(answerFigures(stats), '59 of 576 visual tokens, 9.8x fewer · first token 119 ms · 32.9 tokens/s · cpu');
  assert.equal(
    answerFigures({ ...stats, reduce: 'none', visualTokens: 576, visionCache: 'image read from memory' }),
    'all 576 visual tokens · image read from memory · first token 119 ms · 32.9 tokens/s · cpu',
  );
  assert.equal(answerFigures({ ...stats, tokens: 0, stopReason: 'cancelled' }), 'stopped before the first word');
});

it("say CDPruner's patches were chosen for the question", () => {
  // 576 / 32 = 18: whole above 10x
  assert.equal(
    answerFigures({ ...stats, reduce: 'cdpruner:32', visualTokens: 32 }),
    '32 of 576 visual tokens, 18x fewer, chosen for this question · first token 119 ms · 32.9 tokens/s · cpu',
  );
  assert.match(answerFigures({ ...stats, reduce: 'divprune:32', visualTokens: 32 }), /^32 of 576 visual tokens, 18x fewer · /);
});
