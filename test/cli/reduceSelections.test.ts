/**
 * `prumerge reduce` with the selections: CDPruner, VisPruner and DivPrune on taps files that carry
 * the projector's rows, the question's embedding rows and a score, against the float64
 * references; the baselines; and what is missing said in one line.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SeededRandom } from '../../src/common/random';
import { assertBadInput, prumerge, randomRows, ROOT, writeTaps } from '../helpers/cli';
import { cdprunerReference, divpruneReference, relevanceReference, visprunerReference } from '../reference/selectionReference';

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
});

describe('prumerge reduce with the selections', () => {
  const rng = new SeededRandom(41);
  const tokens = 37; // a 6 x 6 grid and the CLS token
  const width = 12;
  const taps = { hidden: randomRows(rng, tokens, width), q: randomRows(rng, tokens, width), k: randomRows(rng, tokens, width) };
  const projected = randomRows(rng, 36, 16);
  const question = randomRows(rng, 3, 16);
  const score = Array.from({ length: 36 }, () => rng.uniform());
  const file = writeTaps('selections.json', { ...taps, projected, question, score });
  const run = (mode: string): { kept: number[]; order?: number[]; n: number; features: number[][] } => {
    const r = prumerge(['reduce', '--taps', file, '--reduce', mode, '--json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

  it('cdpruner:6 keeps the reference choice, weighed by the question', () => {
    const ref = cdprunerReference(projected, relevanceReference([projected], question)[0]!, 6);
    const out = run('cdpruner:6');
    assert.deepEqual(out.kept, sorted(ref));
    assert.deepEqual(out.order, ref);
    // the kept rows go on as the tower's features of those patches (the projector reads them next)
    out.kept.forEach((p, i) => out.features[i]!.forEach((v, c) => assert.ok(Math.abs(v - taps.hidden[p + 1]![c]!) < 1e-6)));
  });

  it('divprune:6 keeps the reference choice', () => {
    assert.deepEqual(run('divprune:6').order, divpruneReference(projected, 6));
  });

  it('vispruner:6 starts from the given score', () => {
    const features = taps.hidden.slice(1);
    assert.deepEqual(run('vispruner:6').order, visprunerReference(features, score, 6));
  });

  it('random:6 and pool:2 need nothing more', () => {
    assert.equal(new Set(run('random:6').kept).size, 6);
    const pooled = run('pool:2');
    assert.equal(pooled.features.length, 9, '6 x 6 patches in 2 x 2 windows');
  });

  it('cdpruner without the projector rows: one line saying what to add', () => {
    const bare = writeTaps('bare.json', taps);
    assertBadInput(prumerge(['reduce', '--taps', bare, '--reduce', 'cdpruner:6']), /give "projected" \[N\]\[D\] in the taps file/);
    const short = writeTaps('short.json', { ...taps, projected: projected.slice(1) });
    assertBadInput(
      prumerge(['reduce', '--taps', short, '--reduce', 'divprune:6']),
      /"projected" has 35 rows, expected one per patch \(36\)/,
    );
  });
});
