/**
 * Block-wise 4-bit quantisation in the layout of com.microsoft.MatMulNBits (bits 4), for
 * Y = A W^T with W (N, K) as stored in a checkpoint:
 *   B           uint8 (N, n_blocks, block_size / 2): two weights a byte, the even k in the low nibble
 *   scales      float (N * n_blocks)
 *   zero_points uint8 (N * ceil(n_blocks / 2)): two blocks a byte, the even block in the low nibble
 * Asymmetric: each block maps [min, max] (widened to hold 0) onto 0..15; w ~ (q - zero) * scale.
 * K is zero-padded up to a whole number of blocks.
 */

export interface QuantizedMatrix {
  readonly n: number;
  readonly k: number;
  readonly blockSize: number;
  readonly blocks: number; // n_blocks
  readonly packed: Uint8Array; // (N, n_blocks, blockSize / 2)
  readonly scales: Float32Array; // (N * n_blocks)
  readonly zeroPoints: Uint8Array; // (N * ceil(n_blocks / 2))
}

export function quantize4(w: Float32Array, n: number, k: number, blockSize = 32): QuantizedMatrix {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`block size ${blockSize} must be a power of two >= 16`);
  const blocks = Math.ceil(k / blockSize);
  const half = blockSize / 2;
  const packed = new Uint8Array(n * blocks * half);
  const scales = new Float32Array(n * blocks);
  const zpStride = Math.ceil(blocks / 2);
  const zeroPoints = new Uint8Array(n * zpStride);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const end = Math.min(start + blockSize, k);
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        const v = w[row * k + i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const scale = (hi - lo) / 15 || 1;
      const zero = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      scales[row * blocks + b] = scale;
      const zpByte = row * zpStride + (b >> 1);
      zeroPoints[zpByte]! |= b & 1 ? zero << 4 : zero;
      const base = (row * blocks + b) * half;
      for (let i = start; i < start + blockSize; i++) {
        const v = i < end ? w[row * k + i]! : 0;
        const q = Math.min(15, Math.max(0, Math.round(v / scale) + zero));
        const j = i - start;
        packed[base + (j >> 1)]! |= j & 1 ? q << 4 : q;
      }
    }
  }
  return { n, k, blockSize, blocks, packed, scales, zeroPoints };
}

/** The float matrix (N, K) a quantised one stands for. */
export function dequantize4(m: QuantizedMatrix): Float32Array {
  const out = new Float32Array(m.n * m.k);
  const half = m.blockSize / 2;
  const zpStride = Math.ceil(m.blocks / 2);
  for (let row = 0; row < m.n; row++) {
    for (let b = 0; b < m.blocks; b++) {
      const scale = m.scales[row * m.blocks + b]!;
      const zpByte = m.zeroPoints[row * zpStride + (b >> 1)]!;
      const zero = b & 1 ? zpByte >> 4 : zpByte & 15;
      for (let j = 0; j < m.blockSize; j++) {
        const i = b * m.blockSize + j;
        if (i >= m.k) break;
        const byte = m.packed[(row * m.blocks + b) * half + (j >> 1)]!;
        const q = j & 1 ? byte >> 4 : byte & 15;
        out[row * m.k + i] = (q - zero) * scale;
      }
    }
  }
  return out;
}
