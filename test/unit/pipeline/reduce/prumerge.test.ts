import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRandom } from '../../../../src/common/random';
import { iqrOutliers, reduceVisualTokens, spatialSupplement } from '../../../../src/pipeline/reduce/prumerge';
import { parseReduceMode, ReduceMode } from '../../../../src/shared/reduceMode';
import { syntheticTaps } from '../../../../src/pipeline/reduce/syntheticTaps';
import { TapsError, ClsTaps } from '../../../../src/pipeline/reduce/visionTaps';
import { maxAbsDiff, rowsOf, tapsFromRows } from '../../../helpers/taps';
import { Matrix, numpyPercentile, referencePruMerge, referencePruMergeReceived } from '../../../reference/prumergeReference';

const PRUMERGE = parseReduceMode('prumerge');
const PLUS = parseReduceMode('prumerge+');

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max abs difference ${d} > ${tol}`);
}

function zeros(rows: number, width: number): Matrix {
  return Array.from({ length: rows }, () => new Array<number>(width).fill(0));
}

describe('PruMerge on hand-computed cases', () => {
  // q0 = [sqrt 2, 0] makes each logit the key's first component: CLS 0, p0 ln 4, p1..p3 0,
  // so the softmax is [1, 4, 1, 1, 1] / 8 and a = [0.5, 0.125, 0.125, 0.125].
  // IQR: q1 = 0.125, q3 = 0.125 + 0.25 * 0.375 = 0.21875, bound = 0.359375: one outlier, p0.
  const hidden = [
    [9, 9],
    [1, 0],
    [0, 1],
    [0, 2],
    [0, 4],
  ];
  const q = [
    [Math.SQRT2, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];
  const k = [
    [0, 0],
    [Math.log(4), 0],
    [0, 1],
    [0, 1],
    [0, -1],
  ];
  const taps = tapsFromRows(hidden, q, k);

  it('computes the CLS attention over patches without renormalising', () => {
    const r = reduceVisualTokens(taps, PRUMERGE);
    assertClose(r.attention, [0.5, 0.125, 0.125, 0.125], 1e-7, 'attention');
    // ln 4 is rounded to float32 in the taps, hence 1e-8 rather than exact
    assert.ok(Math.abs(r.outliers.q1 - 0.125) < 1e-8);
    assert.ok(Math.abs(r.outliers.q3 - 0.21875) < 1e-8);
    assert.ok(Math.abs(r.outliers.bound - 0.359375) < 1e-8);
    assert.equal(r.outliers.count, 1);
  });

  it('keeps the outlier, merges every other token into it and appends the remainder', () => {
    const r = reduceVisualTokens(taps, PRUMERGE);
    assert.deepEqual([...r.kept], [0]);
    assert.deepEqual([...r.spatial], []);
    // fewer than 33 patches: all N - 1 others; equal similarity (0) goes to the lower index
    assert.deepEqual(
      r.clusters.map((c) => [...c]),
      [[1, 2, 3]],
    );
    assert.equal(r.rows, 2);
    assert.equal(r.remainder, true);
    // X0 + 0.125 (X1 + X2 + X3) and 0.125 (X1 + X2 + X3)
    assertClose(r.features, [1, 0.875, 0, 0.875], 1e-6, 'features');
  });

  it('PruMerge+ adds range(0, 3, 1) minus the kept token, and orders clusters by similarity', () => {
    // n = 1: step = 4, stride = max(int(4 / 3), 1) = 1, start = int(4 / 6) = 0
    const r = reduceVisualTokens(taps, PLUS);
    assert.deepEqual([...r.kept], [0, 1, 2]);
    assert.deepEqual([...r.spatial], [1, 2]);
    // p1's key [0, 1]: p2 cos 1, p0 cos 0, p3 cos -1
    assert.deepEqual(
      r.clusters.map((c) => [...c]),
      [
        [1, 2, 3],
        [2, 0, 3],
        [1, 0, 3],
      ],
    );
    const expected = [
      [1, 0.875], // X0 + 0.125 (X1 + X2 + X3)
      [0.5, 1.75], // X1 + 0.125 X2 + 0.5 X0 + 0.125 X3
      [0.5, 2.625], // X2 + 0.125 X1 + 0.5 X0 + 0.125 X3
      [0, 0.5], // only p3 was pruned: 0.125 X3
    ];
    assertClose(r.features, expected.flat(), 1e-6, 'features');
  });

  it('merges exactly the 32 most similar keys when there are more candidates', () => {
    // 36 patches, C = 3, q0 = [sqrt 3, 0, 0]: logit = key[0]. p0's key [ln 64, 1, 0] gets
    // weight 64, the 35 others (key [0, cos t_j, sin t_j], t_j = 0.05 j) and CLS weight 1:
    // a0 = 0.64, a_j = 0.01. Similarity to p0 falls with t_j, so p1..p32 are merged.
    const n = 36;
    const hidden: Matrix = [
      [0, 0, 0],
      [100, 0, 1],
    ];
    const keys: Matrix = [
      [0, 0, 0],
      [Math.log(64), 1, 0],
    ];
    for (let j = 1; j < n; j++) {
      hidden.push([j, 1, 0]);
      keys.push([0, Math.cos(0.05 * j), Math.sin(0.05 * j)]);
    }
    const qs = zeros(n + 1, 3);
    qs[0] = [Math.sqrt(3), 0, 0];
    const r = reduceVisualTokens(tapsFromRows(hidden, qs, keys), PRUMERGE);
    assert.deepEqual([...r.kept], [0]);
    assert.deepEqual(
      [...r.clusters[0]!],
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    // X0 + 0.01 * sum_{j=1..32} [j, 1, 0] = [100 + 5.28, 0.32, 1]; remainder 0.01 * sum_{1..35}
    assertClose(r.features, [105.28, 0.32, 1, 6.3, 0.35, 0], 1e-5, 'features');
  });
});

describe('PruMerge edge cases', () => {
  it('floors the keep set at one token when attention is flat (no outliers)', () => {
    const n = 576;
    const rng = new SeededRandom(3);
    const key = [1, -2, 0.5, 3];
    const hidden = Array.from({ length: n + 1 }, () => [rng.normal(), rng.normal(), rng.normal(), rng.normal()]);
    const taps = tapsFromRows(
      hidden,
      zeros(n + 1, 4),
      Array.from({ length: n + 1 }, () => key),
    );
    const r = reduceVisualTokens(taps, PRUMERGE);
    assert.equal(r.outliers.count, 0);
    assert.deepEqual([...r.kept], [0]); // every attention is 1/577: ties go to the lowest index
    assert.deepEqual(
      [...r.clusters[0]!],
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    // X0 + (1 / 577) * sum of X1..X32, then (1 / 577) * sum over the 575 pruned
    const expected0 = hidden[1]!.map((x, c) => x + hidden.slice(2, 34).reduce((s, h) => s + h[c]! / 577, 0));
    const expectedRest = hidden[1]!.map((_, c) => hidden.slice(2).reduce((s, h) => s + h[c]! / 577, 0));
    assertClose(r.features, [...expected0, ...expectedRest], 1e-5, 'features');

    // PruMerge+ as if n = 1: step 576, stride 192, start 96 -> 96, 288, 480
    const plus = reduceVisualTokens(taps, PLUS);
    assert.deepEqual([...plus.kept], [0, 96, 288, 480]);
    assert.deepEqual([...plus.spatial], [96, 288, 480]);
    assert.ok(plus.features.every(Number.isFinite));
  });

  it('handles all-zero keys without NaN', () => {
    const taps = tapsFromRows(
      [
        [0, 0],
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      zeros(4, 2),
      zeros(4, 2),
    );
    for (const mode of ['none', 'prumerge', 'prumerge+', 'topk:2']) {
      const r = reduceVisualTokens(taps, parseReduceMode(mode));
      assert.ok(r.features.every(Number.isFinite), mode);
      assert.ok(
        r.attention.every((a) => Math.abs(a - 0.25) < 1e-7),
        mode,
      );
    }
  });

  it('reduces a single patch to itself with no remainder', () => {
    const taps = tapsFromRows(
      [
        [0, 0],
        [2, 3],
      ],
      [
        [1, 1],
        [0, 0],
      ],
      [
        [1, 0],
        [0, 1],
      ],
    );
    for (const mode of ['prumerge', 'prumerge+', 'topk:5']) {
      const r = reduceVisualTokens(taps, parseReduceMode(mode));
      assert.deepEqual([...r.kept], [0], mode);
      assert.deepEqual(
        r.clusters.map((c) => [...c]),
        [[]],
        mode,
      );
      assert.equal(r.remainder, false, mode);
      assert.equal(r.rows, 1, mode);
      assert.deepEqual([...r.features], [2, 3], mode);
    }
  });

  it('topk keeps everything, with no remainder, when k >= N', () => {
    const taps = syntheticTaps({ grid: 3, width: 8, seed: 5 });
    const r = reduceVisualTokens(taps, parseReduceMode('topk:100'));
    assert.equal(r.kept.length, 9);
    assert.deepEqual(
      [...r.kept].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.equal(r.remainder, false);
    assert.equal(r.rows, 9);
    assert.ok(r.clusters.every((c) => c.length === 8));
  });

  it('`none` passes the patch rows through in raster order', () => {
    const taps = syntheticTaps({ grid: 4, width: 6, seed: 2 });
    const r = reduceVisualTokens(taps, parseReduceMode('none'));
    assert.deepEqual(
      [...r.kept],
      Array.from({ length: 16 }, (_, i) => i),
    );
    assert.deepEqual([...r.features], [...taps.hidden.subarray(6)]);
    assert.equal(r.rows, 16);
    assert.equal(r.remainder, false);
  });

  it('leaves its inputs untouched', () => {
    const taps = syntheticTaps({ grid: 6, width: 5, seed: 9 });
    const copy = { hidden: taps.hidden.slice(), q: taps.q.slice(), k: taps.k.slice() };
    reduceVisualTokens(taps, PLUS);
    assert.deepEqual(taps.hidden, copy.hidden);
    assert.deepEqual(taps.q, copy.q);
    assert.deepEqual(taps.k, copy.k);
  });

  it('rejects malformed taps with a TapsError', () => {
    const good = syntheticTaps({ grid: 2, width: 3, seed: 1 });
    const cases: ClsTaps[] = [
      { ...good, tokens: 1, hidden: good.hidden.subarray(0, 3), q: good.q.subarray(0, 3), k: good.k.subarray(0, 3) },
      { ...good, k: good.k.subarray(0, 6) },
      { ...good, width: 0 },
      { ...good, q: Float32Array.from(good.q, (v, i) => (i === 1 ? NaN : v)) },
      { ...good, k: Float32Array.from(good.k, (v, i) => (i === 7 ? Infinity : v)) },
    ];
    for (const taps of cases) {
      assert.throws(() => reduceVisualTokens(taps, PRUMERGE), TapsError);
    }
  });
});

describe('PruMerge+ spatial supplement', () => {
  it('for N = 576 and 32 outliers takes range(3, 575, 6) minus the kept', () => {
    // step = 18, stride = 6, start = 3
    const kept = Int32Array.from([9, 100, 573, 4]);
    const added = [...spatialSupplement(576, 32, kept)];
    const expected: number[] = [];
    for (let c = 3; c < 575; c += 6) if (![9, 573].includes(c)) expected.push(c);
    assert.deepEqual(added, expected);
  });

  it('uses stride 1 where int(step / 3) would be 0', () => {
    // 20 of 30 as outliers: step = 1, start 0, stride max(0, 1) = 1 -> 0..28 minus kept
    const added = [...spatialSupplement(30, 20, Int32Array.from([0, 5]))];
    assert.deepEqual(
      added,
      Array.from({ length: 29 }, (_, i) => i).filter((i) => i !== 0 && i !== 5),
    );
  });

  it('ends at N - 1 on grids other than 24 x 24', () => {
    // N = 256, n = 8: step 32, stride 10, start 5 -> 5, 15, ..., 245 (255 is excluded)
    const added = [...spatialSupplement(256, 8, new Int32Array(0))];
    assert.deepEqual(
      added,
      Array.from({ length: 25 }, (_, i) => 5 + 10 * i),
    );
  });
});

describe('PruMerge against the float64 transcription of the reference code', () => {
  const modes: [ReduceMode, 'prumerge' | 'prumerge+' | { topk: number }][] = [
    [PRUMERGE, 'prumerge'],
    [PLUS, 'prumerge+'],
    [parseReduceMode('topk:32'), { topk: 32 }],
    [parseReduceMode('topk:7'), { topk: 7 }],
  ];
  const inputs: [string, () => ClsTaps][] = [
    ['structured taps, N = 576, C = 64', () => syntheticTaps({ grid: 24, width: 64, seed: 11 })],
    ['structured taps, N = 196, C = 48', () => syntheticTaps({ grid: 14, width: 48, seed: 12 })],
    ['structured taps, N = 49, C = 5', () => syntheticTaps({ grid: 7, width: 5, seed: 13 })],
    [
      'gaussian taps, N = 576, C = 32',
      () => {
        const rng = new SeededRandom(14);
        const size = 577 * 32;
        return { tokens: 577, width: 32, hidden: rng.normals(size), q: rng.normals(size), k: rng.normals(size, 2) };
      },
    ],
  ];
  for (const [label, make] of inputs) {
    for (const [mode, refMode] of modes) {
      it(`${label}, ${JSON.stringify(refMode)}`, () => {
        const taps = make();
        const { width } = taps;
        const ref = referencePruMerge(rowsOf(taps.hidden, width), rowsOf(taps.q, width), rowsOf(taps.k, width), refMode);
        const r = reduceVisualTokens(taps, mode);
        assert.equal(r.outliers.count, ref.outliers);
        assert.deepEqual([...r.kept], ref.kept);
        assert.deepEqual([...r.spatial], ref.spatial);
        assert.deepEqual(
          r.clusters.map((c) => [...c].sort((a, b) => a - b)),
          ref.clusters.map((c) => [...c].sort((a, b) => a - b)),
        );
        assertClose(r.attention, ref.attention, 1e-7, 'attention');
        const scale = maxAbsDiff(ref.features.flat(), new Float32Array(r.features.length));
        assertClose(r.features, ref.features.flat(), 1e-5 * scale, 'features');
      });
    }
  }

  it('at LLaVA-1.5 size (N = 576, C = 1024) for PruMerge+', () => {
    const taps = syntheticTaps({ grid: 24, width: 1024, seed: 21 });
    const ref = referencePruMerge(rowsOf(taps.hidden, 1024), rowsOf(taps.q, 1024), rowsOf(taps.k, 1024), 'prumerge+');
    const r = reduceVisualTokens(taps, PLUS);
    assert.deepEqual([...r.kept], ref.kept);
    assert.deepEqual(
      r.clusters.map((c) => [...c]),
      ref.clusters,
    );
    const scale = maxAbsDiff(ref.features.flat(), new Float32Array(r.features.length));
    assertClose(r.features, ref.features.flat(), 1e-5 * scale, 'features');
  });
});

describe('reference arithmetic the implementation relies on', () => {
  it('the spatial supplement for every outlier count n at N = 576 is range(step // 6, 575, step // 3) with step = 576 // n', () => {
    // the reference computes step = int(1 / (n / N)) in floats; integer division is the same number
    for (let n = 1; n <= 576; n++) {
      const step = Math.floor(576 / n);
      const expected: number[] = [];
      for (let c = Math.floor(step / 6); c < 575; c += Math.max(Math.floor(step / 3), 1)) expected.push(c);
      assert.deepEqual([...spatialSupplement(576, n, new Int32Array(0))], expected, `n = ${n}`);
    }
  });

  it('the IQR bound follows numpy.percentile', () => {
    const rng = new SeededRandom(4);
    for (const len of [1, 2, 3, 4, 5, 17, 576]) {
      const a = Array.from({ length: len }, () => rng.uniform());
      const s = iqrOutliers(a);
      assert.ok(Math.abs(s.q1 - numpyPercentile(a, 25)) < 1e-15);
      assert.ok(Math.abs(s.q3 - numpyPercentile(a, 75)) < 1e-15);
      assert.equal(s.count, a.filter((v) => v > s.q3 + 1.5 * (s.q3 - s.q1)).length);
    }
    // numpy.percentile([1, 2, 3, 4], [25, 75]) = [1.75, 3.25]
    const s = iqrOutliers([4, 1, 3, 2]);
    assert.equal(s.q1, 1.75);
    assert.equal(s.q3, 3.25);
  });
});

describe('PruMerge on towers without CLS (received attention)', () => {
  // four patches; received attention [0.7, 0.1, 0.1, 0.1]: q1 = 0.1, q3 = 0.1 + 0.25 x 0.6 = 0.25, bound 0.475: one outlier (p0)
  const hidden = [
    [1, 0],
    [0, 1],
    [2, 2],
    [3, 0],
  ];
  const k = [
    [1, 0],
    [1, 0.1],
    [0, 1],
    [0.5, 0.5],
  ];
  const taps = {
    tokens: 4,
    width: 2,
    hidden: Float32Array.from(hidden.flat()),
    k: Float32Array.from(k.flat()),
    received: Float32Array.of(0.7, 0.1, 0.1, 0.1),
  };

  it('keeps the outlier of the received scores and merges every other patch into it, weighted by them', () => {
    const r = reduceVisualTokens(taps, PRUMERGE);
    assert.equal(r.score, 'received');
    assert.deepEqual(Array.from(r.kept), [0]);
    // fewer than 33 patches: p0 absorbs the other three, most similar key first (p1, then p3, then p2)
    assert.deepEqual(Array.from(r.clusters[0]!), [1, 3, 2]);
    // p0 + 0.1 (p1 + p2 + p3), then the remainder 0.1 (p1 + p2 + p3)
    assertClose(r.features, [1 + 0.5, 0 + 0.3, 0.5, 0.3], 1e-6, 'features');
    assertClose(r.attention, [0.7, 0.1, 0.1, 0.1], 1e-7, 'attention');
  });

  it('matches the float64 transcription over valid patches only', () => {
    const rng = new SeededRandom(41);
    const n = 49;
    const rows = (): number[][] => Array.from({ length: n }, () => Array.from({ length: 8 }, () => rng.uniform() * 2 - 1));
    const h = rows();
    const kk = rows();
    const raw = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? 5 : 1) * (0.5 + rng.uniform()));
    const received = raw.map((x) => x / raw.reduce((a, b) => a + b, 0));
    const valid = Int32Array.from({ length: n }, (_, i) => i).filter((i) => i % 7 !== 0);
    const t = {
      tokens: n,
      width: 8,
      hidden: Float32Array.from(h.flat()),
      k: Float32Array.from(kk.flat()),
      received: Float32Array.from(received),
    };
    for (const mode of [PRUMERGE, PLUS]) {
      const ours = reduceVisualTokens(t, mode, valid);
      const ref = referencePruMergeReceived(h, kk, received, mode.kind as 'prumerge' | 'prumerge+', Array.from(valid));
      assert.deepEqual(Array.from(ours.kept), ref.kept);
      assertClose(ours.features, ref.features.flat(), 1e-5, `${mode.kind} features`);
    }
  });

  it('refuses a score per patch that does not match the patches, and a non-finite one', () => {
    assert.throws(
      () => reduceVisualTokens({ ...taps, received: Float32Array.of(1, 0, 0) }, PRUMERGE),
      /received holds 3 values, expected one per patch \(4\)/,
    );
    assert.throws(() => reduceVisualTokens({ ...taps, received: Float32Array.of(NaN, 0, 0, 1) }, PRUMERGE), TapsError);
  });
});
