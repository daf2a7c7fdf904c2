/** The heatmap's keyboard focus, on grids laid out by hand: edges, tiles of different sizes, padding that cannot be focused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { navigate, NavCell, NavKey } from '../../../src/shared/heatmapNavigation';

/** A grid of `rows` x `cols` cells of `size` px from (left, top), row-major, skipping `without` ("r,c"). */
function grid(rows: number, cols: number, size: number, left = 0, top = 0, without: string[] = []): (NavCell & { name: string })[] {
  const cells: (NavCell & { name: string })[] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      if (without.includes(`${r},${c}`)) continue;
      const box = { left: left + c * size, top: top + r * size, right: left + (c + 1) * size, bottom: top + (r + 1) * size };
      cells.push({ name: `${r},${c}`, box });
    }
  return cells;
}

/** Where `keys`, pressed in turn from the cell named `start`, leave the focus. */
function walk(cells: (NavCell & { name: string })[], start: string, keys: NavKey[], ctrl = false): string {
  let at = cells.findIndex((c) => c.name === start);
  for (const k of keys) at = navigate(cells, at, k, ctrl);
  return cells[at]!.name;
}

describe('the heatmap focus by keyboard', () => {
  const g = grid(3, 4, 10);

  it('moves one patch each way, and stays at an edge', () => {
    assert.equal(walk(g, '1,1', ['ArrowRight']), '1,2');
    assert.equal(walk(g, '1,1', ['ArrowLeft']), '1,0');
    assert.equal(walk(g, '1,1', ['ArrowUp']), '0,1');
    assert.equal(walk(g, '1,1', ['ArrowDown']), '2,1');
    assert.equal(walk(g, '0,3', ['ArrowRight', 'ArrowUp']), '0,3');
    assert.equal(walk(g, '2,0', ['ArrowLeft', 'ArrowDown']), '2,0');
  });

  it('jumps to the row’s ends, the column’s ends, and with Ctrl the grid’s', () => {
    assert.equal(walk(g, '1,1', ['Home']), '1,0');
    assert.equal(walk(g, '1,1', ['End']), '1,3');
    assert.equal(walk(g, '1,1', ['PageUp']), '0,1');
    assert.equal(walk(g, '1,1', ['PageDown']), '2,1');
    assert.equal(walk(g, '1,2', ['Home'], true), '0,0');
    assert.equal(walk(g, '1,2', ['End'], true), '2,3');
  });

  it('never lands on padding that unpadding removed: it steps over it, or stays', () => {
    const padded = grid(3, 4, 10, 0, 0, ['1,2', '0,3', '1,3', '2,3']);
    assert.equal(walk(padded, '1,1', ['ArrowRight']), '1,1', 'nothing focusable to the right in row 1');
    assert.equal(walk(padded, '0,2', ['ArrowRight']), '0,2');
    assert.equal(walk(padded, '0,2', ['ArrowDown']), '2,2', 'steps over the removed 1,2');
    assert.equal(walk(padded, '2,0', ['End']), '2,2');
  });

  it('crosses from tile to tile, also to tiles of another patch size', () => {
    // a left tile of 4 x 4 patches of 10 px beside a right tile of 2 x 2 patches of 20 px
    const left = grid(4, 4, 10).map((c) => ({ ...c, name: `L${c.name}` }));
    const right = grid(2, 2, 20, 40, 0).map((c) => ({ ...c, name: `R${c.name}` }));
    const both = [...left, ...right];
    assert.equal(walk(both, 'L1,3', ['ArrowRight']), 'R0,0', 'row 1 of the small patches lies in row 0 of the large');
    assert.equal(walk(both, 'L2,3', ['ArrowRight']), 'R1,0');
    assert.equal(walk(both, 'R1,0', ['ArrowLeft']), 'L3,3', 'from the centre of a large patch');
    assert.equal(walk(both, 'L0,0', ['End']), 'R0,1');
  });
});
