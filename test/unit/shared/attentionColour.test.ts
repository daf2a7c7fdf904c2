import assert from 'node:assert/strict';
import { it } from 'node:test';
import { attentionColour, patchColour } from '../../../src/shared/attentionColour';

it('the heatmap scale runs through viridis stops, square-root scaled against the largest attention', () => {
  assert.equal(attentionColour(0), 'rgb(68,1,84)');
  assert.equal(attentionColour(1), 'rgb(253,231,37)');
  assert.equal(attentionColour(0.5), 'rgb(33,145,140)');
  assert.equal(attentionColour(0.125), 'rgb(64,42,112)'); // halfway between the first two stops, rounded
  assert.equal(attentionColour(-3), attentionColour(0));
  assert.equal(patchColour(0.25, 1), attentionColour(0.5)); // sqrt(0.25) = 0.5
  assert.equal(patchColour(0, 0), attentionColour(0)); // all-zero attention: no NaN
});
