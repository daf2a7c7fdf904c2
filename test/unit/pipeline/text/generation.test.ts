import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { LLAVA_15_CHAT_TEMPLATE, llamaTokenizerConfig, llamaTokenizerJson } from '../../../../src/families/text/llama/llamaTokenizer';
import { SeededRandom } from '../../../../src/common/random';
import { RepetitionGuard, sampleToken, TextStreamer } from '../../../../src/pipeline/text/generate';
import { PromptBuilder } from '../../../../src/pipeline/text/prompt';

const tokenizer = new Tokenizer(llamaTokenizerJson(), llamaTokenizerConfig());
const prompt = new PromptBuilder(tokenizer, LLAVA_15_CHAT_TEMPLATE, { bos: 1, eos: 2, image: 32000 });

describe('prompt', () => {
  it("renders LLaVA-1.5's format, the image once, follow-ups after the answers", () => {
    assert.equal(prompt.render([{ question: 'What is this?' }]), 'USER: <image>\nWhat is this? ASSISTANT:');
    assert.equal(
      prompt.render([{ question: 'What is this?', answer: 'A cat.' }, { question: 'Its colour?' }]),
      'USER: <image>\nWhat is this? ASSISTANT: A cat. USER: Its colour? ASSISTANT:',
    );
  });

  it('expands the image token to one slot per visual token, after <s>', () => {
    const { ids, imageStart } = prompt.ids([{ question: 'Hi' }], 5);
    assert.equal(ids[0], 1);
    assert.deepEqual(ids.slice(imageStart, imageStart + 5), [32000, 32000, 32000, 32000, 32000]);
    assert.equal(ids.filter((id) => id === 32000).length, 5);
    // "USER: " before the image: the LLaMA tokenizer's ids, as llava-hf's processor produces them
    assert.deepEqual(ids.slice(0, imageStart), [1, 3148, 1001, 29901, 29871]);
  });

  it('takes any Unicode in a question: emoji, right-to-left, CJK, combining marks, NUL; a lone surrogate becomes U+FFFD', () => {
    const cases: [string, string][] = [
      ['👩‍💻 and 👨‍👩‍👧 🙂', '👩‍💻 and 👨‍👩‍👧 🙂'],
      ['ما هذا؟', 'ما هذا؟'],
      ['这是什么图？', '这是什么图？'],
      ['e\u0301 n\u0303 Å', 'e\u0301 n\u0303 Å'],
      ['a\u0000b\u200Bc', 'a\u0000b\u200Bc'],
      ['lone \uD800 high, lone \uDC00 low', 'lone \uFFFD high, lone \uFFFD low'],
    ];
    for (const [question, expected] of cases) {
      const { ids } = prompt.ids([{ question }], 2);
      const text = prompt.decode(ids);
      assert.ok(text.startsWith('USER:'), text);
      assert.ok(text.endsWith(`\n${expected} ASSISTANT:`), `${JSON.stringify(question)} came back as ${JSON.stringify(text)}`);
    }
  });

  it('decodes an empty answer (end of sequence first) to empty text', () => {
    assert.equal(prompt.decode([]), '');
  });

  it('keeps special-token text typed by the user as text', () => {
    const { ids } = prompt.ids([{ question: 'what is <image> and </s>?' }], 3);
    assert.equal(ids.filter((id) => id === 32000).length, 3);
    assert.ok(!ids.slice(1).includes(2) && !ids.slice(1).includes(1));
  });
});

describe('generation pieces', () => {
  it('streams text without splitting a multi-byte character', () => {
    // '🙂' is four byte-fallback tokens <0xF0><0x9F><0x99><0x82> = ids 243, 162, 156, 133
    const streamer = new TextStreamer((ids) => prompt.decode(ids));
    const pieces = [tokenizer.token_to_id('▁Hi')!, 243, 162, 156, 133].map((id) => streamer.put(id));
    assert.deepEqual(pieces, ['Hi', '', '', '', '🙂']);
    assert.equal(streamer.end(), '');
  });

  it('notices a token, a phrase or a line repeated four times', () => {
    const loop = (seq: number[]): number => {
      const g = new RepetitionGuard();
      return seq.findIndex((id) => g.push(id));
    };
    assert.equal(loop([5, 7, 7, 7, 7, 9]), 4);
    assert.equal(loop([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]), 11);
    assert.equal(loop([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]), -1);
  });

  it('is greedy at temperature 0 and samples only inside the top-p nucleus', () => {
    const logits = Float32Array.of(0, 5, 1, 4.9, -3);
    assert.equal(sampleToken(logits, { temperature: 0, topP: 1 }, new SeededRandom(1)), 1);
    const rng = new SeededRandom(2);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.9 }, rng));
    // p = softmax: 1 -> 0.51, 3 -> 0.46 (together 0.97 >= 0.9); 2, 0, 4 lie outside the nucleus
    assert.deepEqual([...seen].sort(), [1, 3]);
  });

  it('refuses a top-p or temperature that would choose no token, instead of returning undefined', () => {
    const logits = Float32Array.of(0, 5, 1);
    for (const topP of [0, -0.5, Number.NaN, 1.5])
      assert.throws(() => sampleToken(logits, { temperature: 1, topP }, new SeededRandom(1)), RangeError, `top-p ${topP}`);
    assert.throws(() => sampleToken(logits, { temperature: Number.NaN, topP: 1 }, new SeededRandom(1)), RangeError);
  });
});
