/** The heatmap's layout, shared by the PNG export and the panel, on a hand-made 4 x 4 grid. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { patchColour, scoreName } from '../../../src/shared/attentionColour';
import { HeatmapFigure, HeatmapInput, heatmapLayout, legendKeys } from '../../../src/shared/heatmapLayout';
import { llavaGeometry } from '../../../src/pipeline/image/geometry';

// a 8 x 4 image padded to 8 x 8 (2 rows of padding above and below), resized to 4 x 4: grid 4,
// one patch per 2 x 2 source pixels, so patch rows 0 and 3 lie wholly in the padding
const geometry = llavaGeometry(
  { width: 8, height: 4 },
  { width: 8, height: 4 },
  { padToSquare: true, shortestEdge: 4, cropWidth: 4, cropHeight: 4 },
);
const attention = Array.from({ length: 16 }, (_, p) => (p + 1) / 100);
const base: HeatmapInput = {
  mode: 'prumerge+',
  n: 16,
  rows: 4,
  kept: [9, 1, 6],
  spatial: [6],
  remainder: true,
  attention: attention,
  geometry,
  grid: 4,
};

describe('heatmap layout', () => {
  it('places the patches that cover the picture, with their colour and role', () => {
    const layout = heatmapLayout(base);
    assert.equal(layout.width, 8);
    assert.equal(layout.height, 4);
    assert.deepEqual(
      layout.cells.map((c) => c.patch),
      [4, 5, 6, 7, 8, 9, 10, 11],
    );
    const cell9 = layout.cells.find((c) => c.patch === 9)!;
    assert.deepEqual(cell9.box, { left: 2, top: 2, right: 4, bottom: 4 });
    assert.equal(cell9.colour, patchColour(0.1, 0.16));
    assert.equal(cell9.role, 'kept');
    assert.equal(layout.cells.find((c) => c.patch === 6)!.role, 'spatial');
    assert.equal(layout.cells.find((c) => c.patch === 5)!.role, 'other');
  });

  it('sums the reduction up, remainder and patches in the padding included', () => {
    const layout = heatmapLayout(base);
    assert.equal(layout.headline, 'prumerge+ keeps 4 of 16 visual tokens, 4.0x fewer (2 by attention, 1 spatial, 1 remainder)');
    assert.equal(layout.paddingNote, '1 kept patches lie in the padding and are not drawn.');
    const noRemainder = heatmapLayout({ ...base, mode: 'topk:3', rows: 3, spatial: [], remainder: false });
    assert.match(noRemainder.headline, /\(3 by attention, 0 spatial, 0 remainder\)$/);
  });

  it('says how the selections chose, and that they merge nothing', () => {
    const one = (input: HeatmapInput): HeatmapFigure[] => [{ title: '', layout: heatmapLayout(input) }];
    const chosen = { ...base, spatial: [], remainder: false, rows: 3 };
    assert.equal(
      heatmapLayout({ ...chosen, mode: 'cdpruner:3' }).headline,
      'cdpruner:3 keeps 3 of 16 visual tokens, 5.3x fewer (chosen for diversity, every patch weighed alike: an answer also weighs them by its question; none merged)',
    );
    assert.match(
      heatmapLayout({ ...chosen, mode: 'vispruner:3' }).headline,
      /\(half by attention, the rest with duplicates removed; none merged\)$/,
    );
    assert.match(heatmapLayout({ ...chosen, mode: 'pool:2', rows: 4 }).headline, /4\.0x fewer \(2 x 2 windows averaged\)$/);
    assert.deepEqual(legendKeys('divprune:3', one({ ...chosen, mode: 'divprune:3' })), ['kept']);
    assert.deepEqual(legendKeys('random:3', one({ ...chosen, mode: 'random:3' })), ['kept']);
    assert.deepEqual(legendKeys('pool:2', one({ ...chosen, mode: 'pool:2' })), ['kept', 'merged']);
  });

  it('CDPruner opened from an answer: coloured by relevance to its question, which the headline quotes', () => {
    // relevance falls as attention rises: the colour must follow the relevance
    const relevance = Array.from({ length: 16 }, (_, p) => (16 - p) / 16);
    const chosen = {
      ...base,
      mode: 'cdpruner:3',
      spatial: [],
      remainder: false,
      rows: 3,
      relevance,
      question: 'Where is the "Save" button?',
    };
    const layout = heatmapLayout(chosen);
    // the highest relevance among the drawn patches (4..11) is patch 4's, 12/16, of the grid's highest, 16/16
    assert.equal(layout.cells.find((c) => c.patch === 4)!.colour, patchColour(12 / 16, 1));
    assert.equal(layout.cells.find((c) => c.patch === 11)!.colour, patchColour(5 / 16, 1));
    assert.equal(
      layout.headline,
      'cdpruner:3 keeps 3 of 16 visual tokens, 5.3x fewer (chosen for diversity and relevance to "Where is the "Save" button?", the colour; none merged)',
    );
    const long = heatmapLayout({ ...chosen, question: `${'x'.repeat(70)}\nsecond line` }).headline;
    assert.match(long, new RegExp(`relevance to "${'x'.repeat(59)}…", the colour`));
    assert.equal(scoreName('cls', true), 'relevance to the question');
    assert.equal(scoreName('received'), 'attention received');
  });

  it('with all tokens, outlines nothing and names the grid', () => {
    const all = Array.from({ length: 16 }, (_, p) => p);
    const layout = heatmapLayout({ ...base, mode: 'none', rows: 16, kept: all, spatial: [], remainder: false });
    assert.ok(layout.cells.every((c) => c.role === 'other'));
    assert.equal(layout.headline, 'all 16 visual tokens (4 x 4 patches)');
    assert.equal(layout.paddingNote, '');
  });

  it("the legend names only what the picture can show: no unpadding for LLaVA-1.5's one grid", () => {
    const one = (input: HeatmapInput): HeatmapFigure[] => [{ title: '', layout: heatmapLayout(input) }];
    assert.deepEqual(legendKeys('prumerge+', one(base)), ['kept', 'spatial', 'merged']);
    assert.deepEqual(legendKeys('prumerge', one({ ...base, mode: 'prumerge', spatial: [] })), ['kept', 'merged']);
    const all = Array.from({ length: 16 }, (_, p) => p);
    assert.deepEqual(legendKeys('none', one({ ...base, mode: 'none', rows: 16, kept: all, spatial: [], remainder: false })), []);
    // tiles whose padding unpadding removed: a cell of that role is drawn, so the key is there
    const tiles = one(base);
    const shaded = { ...tiles[0]!.layout.cells[0]!, role: 'removed' as const };
    const withTiles: HeatmapFigure[] = [...tiles, { title: 'Tiles', layout: { ...tiles[0]!.layout, cells: [shaded] } }];
    assert.deepEqual(legendKeys('prumerge+', withTiles), ['kept', 'spatial', 'merged', 'removed']);
  });
});
