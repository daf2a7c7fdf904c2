/**
 * `prumerge reduce`: PruMerge on taps files, against the float64 reference, and its refusals of
 * bad input (bin/prumerge.js over the built bundle; `npm test` builds first).
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SeededRandom } from '../../src/common/random';
import { referencePruMerge } from '../reference/prumergeReference';
import { assertBadInput, prumerge, randomRows, ROOT, tmp, writeTaps } from '../helpers/cli';

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
});

describe('prumerge reduce --json', () => {
  const rng = new SeededRandom(31);
  const tokens = 145; // a 12 x 12 grid
  const width = 24;
  const taps = { hidden: randomRows(rng, tokens, width), q: randomRows(rng, tokens, width), k: randomRows(rng, tokens, width, 3) };
  const file = writeTaps('random.json', taps);

  for (const mode of ['prumerge', 'prumerge+', 'topk:16'] as const) {
    it(`matches the float64 reference for ${mode}`, () => {
      const r = prumerge(['reduce', '--taps', file, '--reduce', mode, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const ref = referencePruMerge(taps.hidden, taps.q, taps.k, mode === 'topk:16' ? { topk: 16 } : mode);
      assert.equal(out.mode, mode);
      assert.equal(out.n, 144);
      assert.deepEqual(out.kept, ref.kept);
      assert.deepEqual(out.spatial, ref.spatial);
      assert.deepEqual(out.clusters, ref.clusters);
      assert.equal(out.attention.length, 144);
      out.attention.forEach((a: number, i: number) => assert.ok(Math.abs(a - ref.attention[i]!) < 1e-7));
      assert.equal(out.features.length, ref.features.length);
      const scale = Math.max(...ref.features.map((row) => Math.max(...row.map(Math.abs))));
      out.features.forEach((row: number[], i: number) => {
        assert.equal(row.length, width);
        row.forEach((v, c) => assert.ok(Math.abs(v - ref.features[i]![c]!) < 1e-4 * scale, `feature [${i}][${c}]`));
      });
    });
  }

  it('passes all tokens through with --reduce none', () => {
    const out = JSON.parse(prumerge(['reduce', '--taps', file, '--reduce', 'none', '--json']).stdout);
    assert.deepEqual(
      out.kept,
      Array.from({ length: 144 }, (_, i) => i),
    );
    assert.deepEqual(out.features, taps.hidden.slice(1));
    assert.deepEqual(out.spatial, []);
  });

  it('defaults to prumerge and reads standard input with --taps -', () => {
    const r = prumerge(['reduce', '--taps', '-', '--json'], JSON.stringify(taps));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).mode, 'prumerge');
  });

  it('handles a single patch (N + 1 = 2)', () => {
    const one = writeTaps('one.json', {
      hidden: [
        [1, 2],
        [3, 4],
      ],
      q: [
        [1, 0],
        [0, 1],
      ],
      k: [
        [0, 1],
        [1, 0],
      ],
    });
    const out = JSON.parse(prumerge(['reduce', '--taps', one, '--reduce', 'prumerge+', '--json']).stdout);
    assert.deepEqual(out.kept, [0]);
    assert.deepEqual(out.clusters, [[]]);
    assert.deepEqual(out.features, [[3, 4]]);
  });

  it('prints a readable summary with the kept patches on the grid', () => {
    const r = prumerge(['reduce', '--taps', file, '--reduce', 'prumerge+']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /prumerge\+: 144 patch tokens -> \d+ visual tokens/);
    const grid = r.stdout.split('\n').filter((l) => /^[#+.](?: [#+.]){11}$/.test(l));
    assert.equal(grid.length, 12);
  });

  it('runs on synthetic CLIP-like taps', () => {
    const r = prumerge(['reduce', '--synthetic', '--width', '64', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.n, 576);
    assert.equal(out.features.length, out.kept.length + 1);
  });
});

describe('prumerge reduce rejects bad input with one line and exit 2', () => {
  const ok = {
    hidden: [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    q: [
      [1, 0],
      [0, 1],
      [1, 1],
    ],
    k: [
      [0, 1],
      [1, 0],
      [1, 1],
    ],
  };
  const cases: [string, unknown, RegExp][] = [
    ['a missing field', { hidden: ok.hidden, q: ok.q }, /lacks "k"/],
    ['ragged rows', { ...ok, q: [[1, 0], [0], [1, 1]] }, /q\[1\] has 1 numbers/],
    ['a single row (N + 1 < 2)', { hidden: [[1, 2]], q: [[1, 2]], k: [[1, 2]] }, /need N\+1 >= 2/],
    [
      'a width mismatch',
      {
        ...ok,
        k: [
          [0, 1, 2],
          [1, 0, 2],
          [1, 1, 2],
        ],
      },
      /k\[0\] has 3 numbers but hidden\[0\] has 2/,
    ],
    [
      'a row-count mismatch',
      {
        ...ok,
        q: [
          [1, 0],
          [0, 1],
        ],
      },
      /"q" has 2 rows but "hidden" has 3/,
    ],
    [
      'a string',
      {
        ...ok,
        hidden: [
          [1, 2],
          [3, 'x'],
          [5, 6],
        ],
      },
      /hidden\[1\]\[1\] is "x"/,
    ],
    [
      'null',
      {
        ...ok,
        hidden: [
          [1, 2],
          [3, null],
          [5, 6],
        ],
      },
      /hidden\[1\]\[1\] is null/,
    ],
    ['not an object', [1, 2, 3], /must hold an object/],
  ];
  for (const [what, taps, pattern] of cases) {
    it(what, () => assertBadInput(prumerge(['reduce', '--taps', writeTaps('bad.json', taps), '--json']), pattern));
  }

  it('a non-finite number (1e400)', () => {
    const path = join(tmp, 'inf.json');
    writeFileSync(path, '{"hidden": [[1, 2], [3, 1e400]], "q": [[1, 0], [0, 1]], "k": [[0, 1], [1, 0]]}');
    assertBadInput(prumerge(['reduce', '--taps', path]), /hidden\[1\]\[1\] is .*not a finite/);
  });
  it('invalid JSON', () => {
    const path = join(tmp, 'broken.json');
    writeFileSync(path, '{"hidden": [[1, 2]');
    assertBadInput(prumerge(['reduce', '--taps', path]), /is not valid JSON/);
  });
  it('a missing file', () => assertBadInput(prumerge(['reduce', '--taps', join(tmp, 'none.json')]), /does not exist/));
  it('an unknown mode', () => assertBadInput(prumerge(['reduce', '--synthetic', '--reduce', 'topk:0']), /unknown reduction "topk:0"/));
  it('neither --taps nor --synthetic', () => assertBadInput(prumerge(['reduce']), /exactly one of --taps/));
  it('an unknown option', () => assertBadInput(prumerge(['reduce', '--synthetic', '--fast']), /--fast/));
});
