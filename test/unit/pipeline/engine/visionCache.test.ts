import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cropKey, VisionCache } from '../../../../src/pipeline/engine/visionCache';
import type { TowerTaps } from '../../../../src/pipeline/reduce/visionTaps';
import { cachedCropsText } from '../../../../src/shared/imageNotes';

/** A CLS tower's outputs for `tokens` rows of `width`: hidden, q and k, 12 * tokens * width bytes. */
function taps(tokens: number, width: number): TowerTaps {
  const a = (): Float32Array => new Float32Array(tokens * width);
  return { tokens, width, hidden: a(), q: a(), k: a() };
}

describe('the vision cache', () => {
  it('counts three float32 tensors for a CLS tower and two plus the scores without one', () => {
    const c = new VisionCache(1e6);
    c.set('a', taps(5, 4));
    assert.equal(c.bytes, 3 * 5 * 4 * 4);
    c.set('b', { tokens: 5, width: 4, hidden: new Float32Array(20), k: new Float32Array(20), received: new Float32Array(5) });
    assert.equal(c.bytes, 240 + (20 + 20 + 5) * 4);
  });

  it('evicts the least recently used; a hit makes an entry recent', () => {
    const c = new VisionCache(3 * 240);
    for (const k of ['a', 'b', 'c']) c.set(k, taps(5, 4));
    assert.ok(c.get('a'));
    c.set('d', taps(5, 4));
    assert.equal(c.get('b'), undefined);
    assert.ok(c.get('a') && c.get('c') && c.get('d'));
    assert.equal(c.bytes, 720);
  });

  it('keeps nothing larger than its bound, and a lowered bound evicts at once', () => {
    const c = new VisionCache(200);
    c.set('a', taps(5, 4));
    assert.equal(c.size, 0);
    c.maxBytes = 1000;
    for (const k of ['a', 'b', 'c', 'd']) c.set(k, taps(5, 4));
    assert.equal(c.size, 4);
    c.maxBytes = 500;
    assert.deepEqual([c.size, c.bytes], [2, 480]);
    assert.ok(c.get('d') && c.get('c'));
  });

  it('keys crops by their pixels', () => {
    const x = Float32Array.from([1, 2, 3]);
    assert.equal(cropKey(x), cropKey(Float32Array.from([1, 2, 3])));
    assert.notEqual(cropKey(x), cropKey(Float32Array.from([1, 2, 3.0001])));
    assert.equal(cropKey(new Float32Array([9, 1, 2, 3]).subarray(1)), cropKey(x));
  });

  it('says how much of an image came from memory', () => {
    assert.equal(cachedCropsText({ visionRuns: 1, visionCached: 0 }), undefined);
    assert.equal(cachedCropsText({ visionRuns: 1 }), undefined);
    assert.equal(cachedCropsText({ visionRuns: 1, visionCached: 1 }), 'image read from memory');
    assert.equal(cachedCropsText({ visionRuns: 7, visionCached: 7 }), 'all 7 crops read from memory');
    assert.equal(cachedCropsText({ visionRuns: 7, visionCached: 3 }), '3 of 7 crops read from memory');
  });
});
