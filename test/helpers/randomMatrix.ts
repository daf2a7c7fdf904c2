/** Reproducible random float32 rows for the selections' tests (xorshift32, values in -1..1). */
export type Matrix = number[][];

/** (n, d) values as float32 holds them, flat and as a matrix: the implementations read the one, the references the other. */
export function randomFloat32Rows(n: number, d: number, seed: number): { flat: Float32Array; m: Matrix } {
  let s = seed >>> 0 || 1;
  const flat = Float32Array.from({ length: n * d }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 31 - 1;
  });
  return { flat, m: Array.from({ length: n }, (_, i) => Array.from(flat.subarray(i * d, (i + 1) * d))) };
}
