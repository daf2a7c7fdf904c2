/**
 * `prumerge eval` on the demo model over a 10-question set the test writes: every reading answers
 * every usable question, a broken line and a missing image are reported by line number while the
 * run goes on, results are appended as they come, and a second run resumes from them.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { prumerge, ROOT, tmp } from '../helpers/cli';

const SAMPLE = join(ROOT, 'media', 'samples', 'pipeline-diagram.svg');

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
});

describe('prumerge eval', () => {
  const set = join(tmp, 'mini.jsonl');
  const results = join(tmp, 'mini.results.jsonl');
  const lines = [
    ...Array.from({ length: 5 }, (_, i) => ({ image: SAMPLE, question: `What is box ${i}?`, answers: ['PruMerge', 'prumerge', 'a box'] })),
    { image: SAMPLE, question: 'Is there an arrow?', answers: ['yes'], type: 'yes/no' },
    { image: SAMPLE, question: 'Is there a cat?', answers: ['no'], type: 'yes/no' },
    { image: SAMPLE, question: 'Which? A. boxes B. cats', answers: ['A'], type: 'multiple choice' },
    { image: 'missing.png', question: 'What is this?', answers: ['x'] },
    { image: SAMPLE, question: 'How many boxes?', answers: ['3'] },
  ].map((o) => JSON.stringify(o));
  lines.splice(3, 0, '{"image": broken');
  writeFileSync(set, `${lines.join('\n')}\n`);
  const run = (): ReturnType<typeof prumerge> => prumerge(['eval', set, '--reduce', 'none,topk:8', '--max-new-tokens', '2', '--json']);
  let first: ReturnType<typeof prumerge>;

  it('answers every usable question with each reading, and reports what it could not use by line number', () => {
    first = run();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^line 4: skipped: not JSON/m);
    assert.match(first.stderr, /^line 10: not answered with none: /m);
    assert.match(first.stderr, /^line 10: not answered with topk:8: /m);
    const out = JSON.parse(first.stdout);
    assert.deepEqual(
      out.readings.map((r: { reading: string; answers: number }) => [r.reading, r.answers]),
      [
        ['none', 9],
        ['topk:8', 9],
      ],
    );
    const none = out.readings[0];
    assert.equal(none.open.n, 6);
    assert.equal(none.yesNo.n, 2);
    assert.equal(none.choice.n, 1);
    assert.equal(none.meanVisualTokens, 576);
    // top-k keeps 8 patches and the remainder row
    assert.equal(out.readings[1].meanVisualTokens, 9);
    assert.deepEqual(out.skipped, [{ line: 4, why: out.skipped[0].why }]);
    assert.deepEqual(
      out.failed.map((f: { line: number }) => f.line),
      [10, 10],
    );
    // one line per answer, as they came
    const saved = readFileSync(results, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(saved.length, 18);
    for (const s of saved) assert.ok(s.score >= 0 && s.score <= 1 && typeof s.answer === 'string');
  });

  it('resumes from the results file: nothing answered twice, the same figures', () => {
    // an interrupted run leaves a half-written last line: it is ignored
    writeFileSync(results, `${readFileSync(results, 'utf8')}{"model": "demo`);
    const second = run();
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /resuming: 18 answers already in mini\.results\.jsonl/);
    assert.deepEqual(JSON.parse(second.stdout).readings, JSON.parse(first.stdout).readings);
  });

  it('refuses a set with no usable question, and a reading it does not know, in one line', () => {
    const empty = join(tmp, 'empty.jsonl');
    writeFileSync(empty, '{"image": 1}\n');
    const r = prumerge(['eval', empty]);
    assert.equal(r.status, 2);
    assert.match(r.stderr.trim().split('\n').at(-1)!, /holds no usable question/);
    const bad = prumerge(['eval', set, '--reduce', 'none,fastest']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown reduction "fastest"/);
  });
});
