import { ClsTaps } from '../../src/pipeline/reduce/visionTaps';
import { Matrix } from '../reference/prumergeReference';

export function tapsFromRows(hidden: Matrix, q: Matrix, k: Matrix): ClsTaps {
  const width = hidden[0]!.length;
  return { tokens: hidden.length, width, hidden: flat(hidden), q: flat(q), k: flat(k) };
}

export function rowsOf(data: Float32Array, width: number): Matrix {
  const rows: Matrix = [];
  for (let o = 0; o < data.length; o += width) rows.push(Array.from(data.subarray(o, o + width)));
  return rows;
}

function flat(rows: Matrix): Float32Array {
  return Float32Array.from(rows.flat());
}

/** Largest |a - b| over two equally long sequences. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
