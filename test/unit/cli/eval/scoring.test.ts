/** How `prumerge eval` scores answers, on hand-computed cases (VQA normalisation, POPE, options) and its set's refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { choiceMatch, normaliseAnswer, optionLetter, vqaAccuracy, yesNo, yesNoScores } from '../../../../src/cli/eval/scoring';
import { parseEvalSet } from '../../../../src/cli/eval/evalSet';
import { evalTable, summarise, type Outcome } from '../../../../src/cli/eval/evalSummary';

describe('the VQA answer normalisation', () => {
  it('drops articles and punctuation, lowers case, writes number words as digits', () => {
    assert.equal(normaliseAnswer('The Two dogs.'), '2 dogs');
    assert.equal(normaliseAnswer('  a red-blue flag!'), 'red blue flag');
    assert.equal(normaliseAnswer('yes.'), 'yes');
    assert.equal(normaliseAnswer('No'), 'no');
    assert.equal(normaliseAnswer('1,000'), '1000');
    assert.equal(normaliseAnswer('3.5 inches'), '3.5 inches');
    assert.equal(normaliseAnswer('dont know'), "don't know");
    assert.equal(normaliseAnswer('none'), '0');
  });

  it('scores against each human answer left out in turn: min(1, matches / 3), averaged', () => {
    // ten answers, two of them "2": each of the 8 others sees 2 matches (2/3), each "2" sees 1 (1/3)
    const refs = ['2', '2', ...Array<string>(8).fill('3')];
    assert.ok(Math.abs(vqaAccuracy('two', refs) - (8 * (2 / 3) + 2 * (1 / 3)) / 10) < 1e-12);
    // four or more matches: every leave-one-out subset keeps at least 3
    assert.equal(vqaAccuracy('3', refs), 1);
    assert.equal(vqaAccuracy('four', refs), 0);
    // one reference: whether it matches
    assert.equal(vqaAccuracy('The cat.', ['cat']), 1);
  });
});

describe('yes / no as POPE reads it', () => {
  it('says no where the first sentence has No, no or not, yes otherwise', () => {
    assert.equal(yesNo('No, there is no dog.'), 'no');
    assert.equal(yesNo('There is not a dog in the image.'), 'no');
    assert.equal(yesNo('Yes. No doubt.'), 'yes', 'the first sentence only');
    assert.equal(yesNo('yes'), 'yes');
    assert.equal(yesNo('Nope'), 'yes', 'whole words only');
  });

  it('gives accuracy, precision, recall and F1 with yes as the positive class', () => {
    // tp 2, fp 1, tn 3, fn 2: precision 2/3, recall 1/2, F1 4/7, accuracy 5/8
    const pairs = [
      ...Array(2).fill({ said: 'yes', label: 'yes' }),
      { said: 'yes', label: 'no' },
      ...Array(3).fill({ said: 'no', label: 'no' }),
      ...Array(2).fill({ said: 'no', label: 'yes' }),
    ];
    const s = yesNoScores(pairs);
    assert.ok(Math.abs(s.precision - 2 / 3) < 1e-12);
    assert.equal(s.recall, 0.5);
    assert.ok(Math.abs(s.f1 - 4 / 7) < 1e-12);
    assert.equal(s.accuracy, 5 / 8);
    assert.equal(s.yesRatio, 3 / 8);
    assert.deepEqual(yesNoScores([{ said: 'no', label: 'no' }]), { accuracy: 1, precision: 0, recall: 0, f1: 0, yesRatio: 0 });
  });
});

describe('multiple choice', () => {
  it('reads the option letter however it is written', () => {
    for (const a of ['B', '(B) a cat', 'B. a cat', 'B) a cat', 'The answer is B.']) assert.equal(optionLetter(a), 'B', a);
    assert.equal(optionLetter('Because'), undefined);
    assert.equal(choiceMatch('b', 'B'), 0, 'a lower-case word is not an option');
    assert.equal(choiceMatch('C', ' c '), 1);
  });
});

describe('the set and the summary', () => {
  it('keeps usable lines, and says which are not and why, by line number', () => {
    const text = [
      '{"image": "a.png", "question": "Q?", "answers": ["x"]}',
      '',
      '{"image": "b.png", "question": "Is it?", "answers": ["yes"], "type": "yes/no"}',
      '{not json',
      '{"image": "c.png", "question": "Q?", "answers": []}',
      '{"image": "d.png", "question": "Q?", "answers": ["maybe"], "type": "yes/no"}',
      '{"image": "/abs/e.png", "question": "Which?", "answers": ["A"], "type": "quiz"}',
    ].join('\n');
    const { items, bad } = parseEvalSet(text, '/sets/mini.jsonl');
    assert.deepEqual(
      items.map((i) => [i.line, i.image, i.type]),
      [
        [1, '/sets/a.png', 'open'],
        [3, '/sets/b.png', 'yes/no'],
      ],
    );
    assert.deepEqual(
      bad.map((b) => b.line),
      [4, 5, 6, 7],
    );
    assert.match(bad[0]!.why, /^not JSON/);
    assert.match(bad[3]!.why, /"type" must be one of/);
  });

  it('sums up each reading over its answers', () => {
    const o = (reading: string, type: Outcome['type'], score: number, extra: Partial<Outcome> = {}): Outcome => ({
      model: 'm',
      reading,
      line: 1,
      question: 'q',
      type,
      answer: '',
      score,
      visualTokens: 10,
      totalVisualTokens: 576,
      ttftMs: 100,
      ...extra,
    });
    const rows = summarise(
      ['none', 'prumerge'],
      [
        o('none', 'open', 1, { visualTokens: 576, ttftMs: 300 }),
        o('none', 'open', 0.5, { visualTokens: 576, ttftMs: 500 }),
        o('prumerge', 'yes/no', 1, { said: 'yes', label: 'yes' }),
        o('prumerge', 'multiple choice', 0),
      ],
    );
    assert.deepEqual(rows[0], { reading: 'none', answers: 2, open: { n: 2, vqaAccuracy: 0.75 }, meanVisualTokens: 576, meanTtftMs: 400 });
    assert.equal(rows[1]!.yesNo!.accuracy, 1);
    assert.deepEqual(rows[1]!.choice, { n: 1, accuracy: 0 });
    const table = evalTable(rows).split('\n');
    assert.match(table[1]!, /^none\s+2\s+75\.0 \(2\)\s+-\s+-\s+576\.0\s+400 ms$/);
  });
});
