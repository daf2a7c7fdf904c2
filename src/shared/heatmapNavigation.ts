/**
 * Moving a focus patch over the heatmap by keyboard: by the cells' boxes on the picture, so that it
 * crosses from tile to tile as the eye does, and never onto padding that unpadding removed. Pure:
 * webview/heatmap.ts uses it, test/unit/shared/heatmapNavigation.test.ts checks it.
 */
import type { Box } from './imageGeometry';

export interface NavCell {
  readonly box: Box;
}

export type NavKey = 'ArrowLeft' | 'ArrowRight' | 'ArrowUp' | 'ArrowDown' | 'Home' | 'End' | 'PageUp' | 'PageDown';

export const NAV_KEYS: readonly NavKey[] = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown'];

const centre = (b: Box): { x: number; y: number } => ({ x: (b.left + b.right) / 2, y: (b.top + b.bottom) / 2 });
/** Whether `b` spans the row (or column) through `at`. */
const inRow = (b: Box, y: number): boolean => b.top <= y && y < b.bottom;
const inColumn = (b: Box, x: number): boolean => b.left <= x && x < b.right;

/**
 * The cell a key moves the focus to from cell `from` (an index into `cells`): the nearest cell that
 * way in the same row or column; Home / End: the row's first / last, with `ctrl` the grid's
 * first / last; PageUp / PageDown: the column's top / bottom. Stays where nothing lies that way.
 */
export function navigate(cells: readonly NavCell[], from: number, key: NavKey, ctrl = false): number {
  const here = cells[from];
  if (!here) return cells.length > 0 ? 0 : -1;
  const { x, y } = centre(here.box);
  const pick = (ok: (b: Box) => boolean, better: (a: Box, b: Box) => boolean): number => {
    let best = from;
    cells.forEach((c, i) => {
      if (i !== from && ok(c.box) && (best === from || better(c.box, cells[best]!.box))) best = i;
    });
    return best;
  };
  const readingOrder = (a: Box, b: Box): boolean => a.top < b.top || (a.top === b.top && a.left < b.left);
  switch (key) {
    case 'ArrowRight':
      return pick(
        (b) => inRow(b, y) && b.left >= here.box.right - 1e-6,
        (a, b) => a.left < b.left,
      );
    case 'ArrowLeft':
      return pick(
        (b) => inRow(b, y) && b.right <= here.box.left + 1e-6,
        (a, b) => a.right > b.right,
      );
    case 'ArrowDown':
      return pick(
        (b) => inColumn(b, x) && b.top >= here.box.bottom - 1e-6,
        (a, b) => a.top < b.top,
      );
    case 'ArrowUp':
      return pick(
        (b) => inColumn(b, x) && b.bottom <= here.box.top + 1e-6,
        (a, b) => a.bottom > b.bottom,
      );
    case 'Home':
      return ctrl
        ? pick(() => true, readingOrder)
        : pick(
            (b) => inRow(b, y) && b.left < here.box.left,
            (a, b) => a.left < b.left,
          );
    case 'End':
      return ctrl
        ? pick(
            () => true,
            (a, b) => !readingOrder(a, b),
          )
        : pick(
            (b) => inRow(b, y) && b.left > here.box.left,
            (a, b) => a.left > b.left,
          );
    case 'PageUp':
      return pick(
        (b) => inColumn(b, x) && b.top < here.box.top,
        (a, b) => a.top < b.top,
      );
    case 'PageDown':
      return pick(
        (b) => inColumn(b, x) && b.top > here.box.top,
        (a, b) => a.top > b.top,
      );
  }
}
