import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyChatEvent } from '../../../src/shared/chatTranscript';
import { prefillMsLeft, prefillText } from '../../../src/shared/prefillProgress';
import type { ChatAnswer } from '../../../src/shared/webviewMessages';

describe('prefill progress', () => {
  it('estimates the time left from the rate so far', () => {
    // 640 positions in 20 s: 32 per second; 1730 left -> 54.06 s
    const p = { filled: 640, total: 2370, reused: 0, elapsedMs: 20_000 };
    assert.ok(Math.abs(prefillMsLeft(p)! - 54_062.5) < 1e-6);
    assert.equal(prefillText(p), 'Reading the prompt: 640 of 2,370 tokens, about 55 s left');
  });

  it('counts only the positions this request filled, not those reused from the conversation', () => {
    // 128 filled in 4 s after 472 reused: 100 left at 32 per second -> 3.125 s
    assert.equal(prefillMsLeft({ filled: 600, total: 700, reused: 472, elapsedMs: 4_000 }), 3_125);
    assert.equal(
      prefillText({ filled: 100, total: 9_000, reused: 0, elapsedMs: 10_000 }),
      'Reading the prompt: 100 of 9,000 tokens, about 15 min left',
    );
    assert.equal(prefillMsLeft({ filled: 472, total: 700, reused: 472, elapsedMs: 0 }), undefined);
    assert.equal(prefillText({ filled: 700, total: 700, reused: 0, elapsedMs: 9_000 }), 'Reading the prompt: 700 of 700 tokens');
  });

  it('is held on the answer until its first words arrive', () => {
    const answers: ChatAnswer[] = [];
    applyChatEvent(answers, { type: 'answerStart', id: 'a', question: 'q', reduce: 'none', group: 'g' });
    const progress = { filled: 128, total: 2370, reused: 0, elapsedMs: 4_000 };
    assert.deepEqual(applyChatEvent(answers, { type: 'answerPrefill', id: 'a', progress })?.prefill, progress);
    assert.equal(applyChatEvent(answers, { type: 'answerDelta', id: 'a', delta: 'It' })?.prefill, undefined);
  });
});
