/** The chat's attached images: what may be added, and the tokens several make together. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachedImage, samePaths, totalTokens, withAdded } from '../../../../src/extension/chat/attachedImages';
import { detailForImages } from '../../../../src/shared/reductionChoices';

const at = (...paths: string[]) => paths.map((p) => attachedImage(p, false));
const paths = (r: ReturnType<typeof withAdded>): string[] | string => (typeof r === 'string' ? r : r.map((i) => i.path));
const name = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

describe('the images attached to the chat', () => {
  it('adds after those attached, once each, in the order given', () => {
    const current = at('/w/a.png');
    assert.deepEqual(paths(withAdded(current, at('/w/b.png', '/w/a.png', '/w/c.png', '/w/b.png'), name)), [
      '/w/a.png',
      '/w/b.png',
      '/w/c.png',
    ]);
    // the images already attached stay the same objects (their early reading goes on)
    assert.equal((withAdded(current, at('/w/b.png'), name) as unknown[])[0], current[0]);
  });

  it('refuses more than 4, saying how many to remove and naming what was to be added', () => {
    const three = at('/w/a.png', '/w/b.png', '/w/c.png');
    assert.equal(paths(withAdded(three, at('/w/d.png'), name)).length, 4);
    assert.equal(
      withAdded(three, at('/w/d.png', '/w/e.png'), name),
      'A question holds at most 4 images: remove one of those attached to add d.png, e.png.',
    );
    assert.equal(
      withAdded(three, at('/w/d.png', '/w/e.png', '/w/f.png'), name),
      'A question holds at most 4 images: remove 2 of those attached to add d.png, e.png, f.png.',
    );
    // one already attached does not count twice
    assert.equal(paths(withAdded(three, at('/w/a.png', '/w/d.png'), name)).length, 4);
  });

  it('compares lists by path and order', () => {
    assert.ok(samePaths(at('/a', '/b'), at('/a', '/b')));
    assert.equal(samePaths(at('/a', '/b'), at('/b', '/a')), false);
    assert.equal(samePaths(at('/a'), at('/a', '/b')), false);
  });

  it('sums the tokens once every image has its count', () => {
    assert.equal(totalTokens([]), undefined);
    assert.equal(totalTokens([{ total: 576, subImages: 1 }, undefined]), undefined);
    const one = { total: 2880, subImages: 5, msPerCrop: 400 };
    assert.equal(totalTokens([one]), one);
    // 576 + 2880 tokens, 1 + 5 crops: a hand sum
    assert.deepEqual(totalTokens([{ total: 576, subImages: 1 }, one]), { total: 3456, subImages: 6, msPerCrop: 400 });
  });

  it('reads each of several as one crop where the model has that reading, unless asked otherwise', () => {
    const onevision = { medium: true, low: true };
    const next = { medium: true, low: false };
    assert.equal(detailForImages('auto', 2, onevision), 'low');
    assert.equal(detailForImages('auto', 1, onevision), 'auto');
    assert.equal(detailForImages('medium', 3, onevision), 'medium');
    assert.equal(detailForImages('auto', 2, next), 'auto');
  });
});
