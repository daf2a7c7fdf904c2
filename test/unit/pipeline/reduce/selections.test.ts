/**
 * CDPruner, VisPruner, DivPrune and the baselines on hand-computed cases (ties, a budget above the
 * kernel's rank, one shared min-max over several crops) and against the plain references of
 * test/reference/selectionReference.ts on small random inputs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cdpruner, divprune, normaliseRelevance, relevance } from '../../../../src/pipeline/reduce/diversity';
import { vispruner } from '../../../../src/pipeline/reduce/vispruner';
import { poolRows, randomRows } from '../../../../src/pipeline/reduce/baselines';
import { randomFloat32Rows } from '../../../helpers/randomMatrix';
import {
  cdprunerReference,
  divpruneReference,
  Matrix,
  relevanceReference,
  visprunerReference,
} from '../../../reference/selectionReference';

const flat = (m: Matrix): Float32Array => Float32Array.from(m.flat());
const list = (a: Int32Array): number[] => [...a];

const randomMatrix = (n: number, d: number, seed: number): Matrix => randomFloat32Rows(n, d, seed).m;

describe('DivPrune', () => {
  it('starts from the row farthest from its nearest other, then the farthest from those chosen', () => {
    // b is nearly a; c is orthogonal to a: 1 - cos(a, b) = 1 - 0.9 / sqrt(0.82) = 0.0061, c's nearest is b at 0.8896
    const rows = [
      [1, 0],
      [0.9, 0.1],
      [0, 1],
    ];
    const r = divprune(flat(rows), 3, 2, 2);
    assert.deepEqual(list(r.order), [2, 0]);
    assert.deepEqual(list(r.kept), [0, 2]);
    assert.deepEqual(list(divprune(flat(rows), 3, 2, 5).kept), [0, 1, 2], 'a budget above the rows keeps them all');
  });

  it('breaks ties toward the lower index', () => {
    // four rows at right angles in pairs: every distance ties
    const rows = [
      [1, 0],
      [0, 1],
      [-1, 0],
      [0, -1],
    ];
    assert.deepEqual(list(divprune(flat(rows), 4, 2, 2).order), [0, 2]);
  });

  it('matches the reference on random rows', () => {
    for (const seed of [1, 2, 3]) {
      const rows = randomMatrix(30, 12, seed);
      assert.deepEqual(list(divprune(flat(rows), 30, 12, 9).order), divpruneReference(rows, 9), `seed ${seed}`);
    }
  });
});

describe('CDPruner', () => {
  it('stops where the kernel has no rank left: a budget of 3 over two directions keeps 2', () => {
    const rows = [
      [1, 0],
      [1, 0],
      [0, 1],
    ];
    assert.deepEqual(list(cdpruner(flat(rows), 3, 2, [1, 1, 1], 3).kept), [0, 2]);
    assert.deepEqual(cdprunerReference(rows, [1, 1, 1], 3), [0, 2]);
  });

  it('prefers the relevant copy of a duplicate: relevance 0.5 against 1 picks the second', () => {
    const rows = [
      [1, 0],
      [1, 0],
      [0, 1],
    ];
    // L = diag(r) S diag(r): its diagonal is 0.25, 1, 1; the tie between 1 and 2 goes to 1
    assert.deepEqual(list(cdpruner(flat(rows), 3, 2, [0.5, 1, 1], 2).order), [1, 2]);
  });

  it('normalises relevance over every crop together', () => {
    const [a, b] = normaliseRelevance([Float64Array.from([0.2, 0.6]), Float64Array.from([-0.2, 0.2])]);
    // min -0.2, max 0.6: (v + 0.2) / (0.8 + 1e-6)
    const scale = 0.8 + 1e-6;
    assert.deepEqual([...a!, ...b!], [0.4 / scale, 0.8 / scale, 0, 0.4 / scale]);
  });

  it('matches the reference on random rows and questions, two crops sharing one min-max', () => {
    for (const seed of [4, 5]) {
      const crops = [randomMatrix(20, 10, seed), randomMatrix(14, 10, seed + 10)];
      const question = randomMatrix(3, 10, seed + 20);
      const mean = Float64Array.from(question[0]!, (_, c) => question.reduce((s, r) => s + r[c]!, 0) / question.length);
      const ours = normaliseRelevance(crops.map((m) => relevance(flat(m), m.length, 10, mean)));
      const theirs = relevanceReference(crops, question);
      ours.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - theirs[i]![j]!) < 1e-9)));
      crops.forEach((m, i) => {
        assert.deepEqual(
          list(cdpruner(flat(m), m.length, 10, ours[i]!, 6).order),
          cdprunerReference(m, theirs[i]!, 6),
          `seed ${seed} crop ${i}`,
        );
      });
    }
  });
});

describe('VisPruner', () => {
  it('keeps the important half by score, then drops from A the member most like B', () => {
    // scores put patches in index order; 2 and 3 point the same way, 4 and 5 do not
    const features = [
      [1, 1],
      [1, -1],
      [1, 0],
      [1, 0.1],
      [0, 1],
      [-1, 0],
    ];
    const r = vispruner(flat(features), 6, 2, [6, 5, 4, 3, 2, 1], 5);
    // important: 0, 1; A = 2, 4 and B = 3, 5; cos(2, 3) = 0.995 > cos(4, 3) = 0.0995: 2 goes
    assert.deepEqual(list(r.kept), [0, 1, 3, 4, 5]);
    assert.deepEqual(list(r.order), visprunerReference(features, [6, 5, 4, 3, 2, 1], 5));
  });

  it('matches the reference on random features, in several rounds', () => {
    for (const seed of [6, 7]) {
      const features = randomMatrix(60, 8, seed);
      const score = randomMatrix(1, 60, seed + 1)[0]!;
      // 60 patches to 10: the loop runs many rounds of at most 8
      assert.deepEqual(list(vispruner(flat(features), 60, 8, score, 10).order), visprunerReference(features, score, 10), `seed ${seed}`);
    }
  });
});

describe('the baselines', () => {
  it('random:T draws T distinct patches, the same for one seed, others for another', () => {
    const a = randomRows(576, 64, 0);
    assert.equal(new Set(a.kept).size, 64);
    assert.ok(a.kept.every((p) => p >= 0 && p < 576));
    assert.deepEqual(
      list(a.kept),
      [...a.kept].sort((x, y) => x - y),
    );
    assert.deepEqual(randomRows(576, 64, 0), a);
    assert.notDeepEqual(list(randomRows(576, 64, 1).kept), list(a.kept));
    assert.equal(randomRows(10, 64).kept.length, 10);
  });

  it('random:T is uniform: each patch drawn about T / N of the time over many seeds', () => {
    const counts = new Array<number>(20).fill(0);
    for (let seed = 0; seed < 2000; seed++) for (const p of randomRows(20, 5, seed).kept) counts[p]!++;
    // expected 500 each (2000 x 5 / 20); a binomial's sd is about 19: 5 sd either side
    for (const c of counts) assert.ok(Math.abs(c - 500) < 100, `${c}`);
  });

  it('pool:K averages K x K windows, partial ones at the edge and over padding', () => {
    // a 3 x 3 grid whose one feature is the patch index; windows {0,1,3,4} {2,5} {6,7} {8}
    const features = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const all = poolRows(features, 1, 3, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]), 2);
    assert.deepEqual([...all.features], [2, 3.5, 6.5, 8]);
    assert.deepEqual(list(all.kept), [0, 2, 6, 8]);
    assert.deepEqual(all.clusters.map(list), [[0, 1, 3, 4], [2, 5], [6, 7], [8]]);
    // patch 4 is padding: rows of `features` are the valid patches in order
    const valid = Int32Array.from([0, 1, 2, 3, 5, 6, 7, 8]);
    const some = poolRows(Float32Array.from([0, 1, 2, 3, 5, 6, 7, 8]), 1, 3, valid, 2);
    assert.ok(Math.abs(some.features[0]! - 4 / 3) < 1e-6);
    assert.deepEqual(some.clusters.map(list)[0], [0, 1, 3]);
  });
});
