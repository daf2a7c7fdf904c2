/**
 * Block-wise 4- or 8-bit quantisation in the layout of com.microsoft.MatMulNBits, for
 * Y = A W^T with W (N, K) as stored in a checkpoint:
 *   B           uint8 (N, n_blocks, block_size * bits / 8): 4 bits: two weights a byte, the even k
 *               in the low nibble; 8 bits: one weight a byte
 *   scales      float (N * n_blocks)
 *   zero_points uint8: 4 bits: (N * ceil(n_blocks / 2)), two blocks a byte, the even block in the
 *               low nibble; 8 bits: (N * n_blocks), one a byte
 * Asymmetric: each block maps [min, max] (widened to hold 0) onto 0..2^bits - 1; w ~ (q - zero) * scale.
 * K is zero-padded up to a whole number of blocks.
 */

export type QuantBits = 4 | 8;

export interface QuantizedMatrix {
  readonly bits: QuantBits;
  readonly n: number;
  readonly k: number;
  readonly blockSize: number;
  readonly blocks: number; // n_blocks
  readonly packed: Uint8Array; // (N, n_blocks, blockSize * bits / 8)
  readonly scales: Float32Array; // (N * n_blocks)
  readonly zeroPoints: Uint8Array;
}

/** Bytes of zero points per row. */
function zpStride(bits: QuantBits, blocks: number): number {
  return bits === 4 ? Math.ceil(blocks / 2) : blocks;
}

export function quantize(w: Float32Array, n: number, k: number, bits: QuantBits, blockSize = 32): QuantizedMatrix {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`block size ${blockSize} must be a power of two >= 16`);
  const levels = (1 << bits) - 1;
  const blocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const zpRow = zpStride(bits, blocks);
  const zeroPoints = new Uint8Array(n * zpRow);
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
      const scale = (hi - lo) / levels || 1;
      const zero = Math.min(levels, Math.max(0, Math.round(-lo / scale)));
      scales[row * blocks + b] = scale;
      if (bits === 8) zeroPoints[row * zpRow + b] = zero;
      else zeroPoints[row * zpRow + (b >> 1)]! |= b & 1 ? zero << 4 : zero;
      const base = (row * blocks + b) * blob;
      for (let i = start; i < start + blockSize; i++) {
        const v = i < end ? w[row * k + i]! : 0;
        const q = Math.min(levels, Math.max(0, Math.round(v / scale) + zero));
        const j = i - start;
        if (bits === 8) packed[base + j] = q;
        else packed[base + (j >> 1)]! |= j & 1 ? q << 4 : q;
      }
    }
  }
  return { bits, n, k, blockSize, blocks, packed, scales, zeroPoints };
}

/** The float matrix (N, K) a quantised one stands for. */
export function dequantize(m: QuantizedMatrix): Float32Array {
  const out = new Float32Array(m.n * m.k);
  const blob = (m.blockSize * m.bits) / 8;
  const zpRow = zpStride(m.bits, m.blocks);
  for (let row = 0; row < m.n; row++) {
    for (let b = 0; b < m.blocks; b++) {
      const scale = m.scales[row * m.blocks + b]!;
      const zpByte = m.zeroPoints[row * zpRow + (m.bits === 8 ? b : b >> 1)]!;
      const zero = m.bits === 8 ? zpByte : b & 1 ? zpByte >> 4 : zpByte & 15;
      for (let j = 0; j < m.blockSize; j++) {
        const i = b * m.blockSize + j;
        if (i >= m.k) break;
        const byte = m.packed[(row * m.blocks + b) * blob + (m.bits === 8 ? j : j >> 1)]!;
        const q = m.bits === 8 ? byte : j & 1 ? byte >> 4 : byte & 15;
        out[row * m.k + i] = (q - zero) * scale;
      }
    }
  }
  return out;
}

/**
 * Symmetric per-output-channel int8 weights for com.microsoft.DynamicQuantizeMatMul (onnxruntime's
 * u8 x s8 GEMM): W (N, K) as stored in a checkpoint -> B (K, N) int8 and one scale per column of B.
 * 7-bit weights ([-63, 63]) keep the AVX2 kernel's int16 pair sums from saturating (255 x 63 x 2
 * fits in int16; 255 x 127 x 2 does not); CPUs with VNNI take the full 8 bits (docs/vision-int8.md).
 */
export type Int8WeightBits = 7 | 8;

export interface ChannelQuantized {
  readonly bits: Int8WeightBits;
  readonly data: Int8Array; // (K, N)
  readonly scales: Float32Array; // (N)
}

export function quantizePerChannel(w: Float32Array, n: number, k: number, bits: Int8WeightBits): ChannelQuantized {
  const qmax = bits === 8 ? 127 : 63;
  const data = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let row = 0; row < n; row++) {
    let maxAbs = 0;
    for (let i = 0; i < k; i++) maxAbs = Math.max(maxAbs, Math.abs(w[row * k + i]!));
    const scale = maxAbs / qmax || 1;
    scales[row] = scale;
    for (let i = 0; i < k; i++) data[i * n + row] = Math.max(-qmax, Math.min(qmax, Math.round(w[row * k + i]! / scale)));
  }
  return { bits, data, scales };
}
