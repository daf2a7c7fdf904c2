/** The grids a tiled layout reads an image at: (height, width) in pixels, each a whole number of tiles. */
export type Pinpoints = readonly (readonly [number, number])[];

/** Whether `v` is a list of (height, width) pairs, each a whole number of `tile` px tiles. */
export function isPinpoints(v: unknown, tile: number): v is [number, number][] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => Number.isSafeInteger(x) && x > 0 && x % tile === 0))
  );
}
