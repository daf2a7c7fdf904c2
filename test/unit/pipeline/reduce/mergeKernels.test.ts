/** The WebAssembly merge kernels: built from their source, and equal to plain loops over the same data. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRandom } from '../../../../src/common/random';
import { COSINE_BLOCK, MergeWorkspace } from '../../../../src/pipeline/reduce/mergeKernels';

function randomRows(rng: SeededRandom, n: number, width: number): Float32Array {
  return Float32Array.from({ length: n * width }, () => rng.uniform() * 2 - 1);
}

/** Plain-loop cosine similarity of rows a and b, in float64. */
function cosine(keys: Float32Array, width: number, a: number, b: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let c = 0; c < width; c++) {
    const x = keys[a * width + c]!;
    const y = keys[b * width + c]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('merge kernels against plain loops', () => {
  // widths that fill whole SIMD lanes and widths that leave a ragged tail
  for (const width of [8, 13, 1024]) {
    it(`cosine similarities of four rows to every row, width ${width}`, () => {
      const rng = new SeededRandom(width);
      const n = 37;
      const keys = randomRows(rng, n, width);
      const ws = new MergeWorkspace(keys, randomRows(rng, n, width), n, width);
      const rows = [0, 5, 36, 17];
      const sims = ws.compare(rows[0]!, rows[1]!, rows[2]!, rows[3]!);
      for (let t = 0; t < COSINE_BLOCK; t++) {
        for (let j = 0; j < n; j++)
          assert.ok(Math.abs(sims[t * n + j]! - cosine(keys, width, rows[t]!, j)) < 1e-5, `row ${rows[t]} vs ${j}`);
      }
    });

    it(`one row's cosines to every row, and four rows' to the rows from an index on, width ${width}`, () => {
      const rng = new SeededRandom(200 + width);
      const n = 37;
      const keys = randomRows(rng, n, width);
      const ws = new MergeWorkspace(keys, keys, n, width);
      const one = Float32Array.from(ws.compareOne(22).subarray(0, n));
      for (let j = 0; j < n; j++) assert.ok(Math.abs(one[j]! - cosine(keys, width, 22, j)) < 1e-5, `row 22 vs ${j}`);
      const from = 30;
      const rows = [30, 31, 32, 4];
      const sims = ws.compareFrom(from, rows[0]!, rows[1]!, rows[2]!, rows[3]!);
      for (let t = 0; t < COSINE_BLOCK; t++)
        for (let j = from; j < n; j++)
          assert.ok(Math.abs(sims[t * (n - from) + j - from]! - cosine(keys, width, rows[t]!, j)) < 1e-5, `row ${rows[t]} vs ${j}`);
    });

    it(`float64 dot products of the rows as given, width ${width}`, () => {
      const rng = new SeededRandom(300 + width);
      const n = 9;
      const hidden = randomRows(rng, n, width);
      const ws = new MergeWorkspace(randomRows(rng, n, width), hidden, n, width);
      for (const [a, b] of [
        [0, 8],
        [3, 3],
        [5, 1],
      ] as const) {
        let sum = 0;
        for (let c = 0; c < width; c++) sum += hidden[a * width + c]! * hidden[b * width + c]!;
        // float32 products are exact in float64: only the order of the sum may differ
        assert.ok(Math.abs(ws.hiddenDot(a, b) - sum) < 1e-12 * width, `rows ${a} and ${b}`);
      }
    });

    it(`a kept row plus the weighted sum of its neighbours, width ${width}`, () => {
      const rng = new SeededRandom(100 + width);
      const n = 29;
      const hidden = randomRows(rng, n, width);
      const ws = new MergeWorkspace(randomRows(rng, n, width), hidden, n, width);
      const weights = Float32Array.from({ length: n }, () => rng.uniform());
      const ids = [3, 28, 0, 11, 11];
      const out = new Float32Array(3 * width);
      ws.mergeInto(out, 1, 7, ids, weights);
      ws.mergeInto(out, 2, -1, ids, weights); // no base row: the sum alone
      for (let c = 0; c < width; c++) {
        let sum = 0;
        for (const j of ids) sum += weights[j]! * hidden[j * width + c]!;
        assert.ok(Math.abs(out[width + c]! - (hidden[7 * width + c]! + sum)) < 1e-5, `column ${c}`);
        assert.ok(Math.abs(out[2 * width + c]! - sum) < 1e-5, `column ${c}, no base`);
        assert.equal(out[c], 0, 'rows not written stay as they were');
      }
    });
  }
});
