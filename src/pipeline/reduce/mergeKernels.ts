/**
 * The arithmetic of PruMerge's merge step (key normalisation, the O(M N C) cosine similarities,
 * the weighted sums) in WebAssembly SIMD (mergeKernels.wat). `npm run bench:reduce` prints its
 * speed against the same loops in plain JavaScript.
 */
import { MERGE_KERNELS_WASM } from './mergeKernels.generated';

interface KernelExports {
  readonly memory: WebAssembly.Memory;
  normalizeRows(p: number, rows: number, stride: number): void;
  cosineBlock(keys: number, rows: number, stride: number, a0: number, a1: number, a2: number, a3: number, out: number): void;
  gatherAxpy(dst: number, src: number, stride: number, idx: number, w: number, count: number): void;
  dotF64(a: number, b: number, stride: number): number;
  cosineRow(keys: number, rows: number, stride: number, a: number, out: number): void;
}

/** Kept rows compared per cosineBlock call. */
export const COSINE_BLOCK = 4;

let instance: KernelExports | undefined;

function kernels(): KernelExports {
  instance ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(MERGE_KERNELS_WASM, 'base64')))
    .exports as unknown as KernelExports;
  return instance;
}

/**
 * One reduction's patch keys (normalised) and hidden rows, held in the kernels' memory.
 * The memory is shared: a workspace is valid until the next one is created.
 *
 * Layout, in bytes: keys (n, stride) | hidden (n, stride) | sims (4, n) f32 | acc (stride) |
 * idx (n) i32 | w (n) f32.
 */
export class MergeWorkspace {
  private readonly k = kernels();
  private readonly stride: number;
  private readonly at: { keys: number; hidden: number; sims: number; acc: number; idx: number; w: number };
  private readonly f32: Float32Array;
  private readonly i32: Int32Array;
  /** (COSINE_BLOCK, n) the similarities of the last `compare`. */
  readonly sims: Float32Array;

  /**
   * @param keys (n, width) the patch rows of K (CLS excluded)
   * @param hidden (n, width) the patch rows of the penultimate hidden states
   */
  constructor(
    keys: Float32Array,
    hidden: Float32Array,
    private readonly n: number,
    private readonly width: number,
  ) {
    const stride = Math.ceil(width / 4) * 16;
    this.stride = stride;
    const keysAt = 0;
    const hiddenAt = keysAt + n * stride;
    const simsAt = hiddenAt + n * stride;
    const accAt = simsAt + COSINE_BLOCK * n * 4;
    const idxAt = accAt + stride;
    const wAt = idxAt + n * 4;
    const bytes = wAt + n * 4;
    this.at = { keys: keysAt, hidden: hiddenAt, sims: simsAt, acc: accAt, idx: idxAt, w: wAt };

    const { memory } = this.k;
    if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
    this.f32 = new Float32Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    this.copyPadded(keys, keysAt);
    this.copyPadded(hidden, hiddenAt);
    this.k.normalizeRows(keysAt, n, stride);
    this.sims = this.f32.subarray(simsAt / 4, simsAt / 4 + COSINE_BLOCK * n);
  }

  private copyPadded(src: Float32Array, at: number): void {
    const cols = this.stride / 4;
    const base = at / 4;
    if (cols === this.width) {
      this.f32.set(src.subarray(0, this.n * cols), base);
      return;
    }
    this.f32.fill(0, base, base + this.n * cols);
    for (let r = 0; r < this.n; r++) this.f32.set(src.subarray(r * this.width, (r + 1) * this.width), base + r * cols);
  }

  /** Fills `sims` with the cosine similarity of patches r0..r3 to every patch. */
  compare(r0: number, r1: number, r2: number, r3: number): Float32Array {
    return this.compareFrom(0, r0, r1, r2, r3);
  }

  /**
   * The cosine similarity of patches r0..r3 to patches from..n-1: (4, n - from) at the start of
   * `sims` (a symmetric matrix needs each pair once).
   */
  compareFrom(from: number, r0: number, r1: number, r2: number, r3: number): Float32Array {
    const s = this.stride;
    this.k.cosineBlock(this.at.keys + from * s, this.n - from, s, r0 * s, r1 * s, r2 * s, r3 * s, this.at.sims);
    return this.sims;
  }

  /** The cosine similarity of patch r to every patch, in the first n values of `sims`. */
  compareOne(r: number): Float32Array {
    const s = this.stride;
    this.k.cosineRow(this.at.keys, this.n, s, this.at.keys + r * s, this.at.sims);
    return this.sims;
  }

  /** hidden[i] . hidden[j] in float64, from the rows as given (not normalised). */
  hiddenDot(i: number, j: number): number {
    const s = this.stride;
    return this.k.dotF64(this.at.hidden + i * s, this.at.hidden + j * s, s);
  }

  /**
   * Writes hidden[base] (or zeros when base < 0) + sum_t weights[ids[t]] * hidden[ids[t]] into
   * out[outRow * width ...]. `weights` is indexed by patch.
   */
  mergeInto(out: Float32Array, outRow: number, base: number, ids: ArrayLike<number>, weights: ArrayLike<number>): void {
    const cols = this.stride / 4;
    const acc = this.at.acc / 4;
    if (base >= 0) this.f32.copyWithin(acc, this.at.hidden / 4 + base * cols, this.at.hidden / 4 + (base + 1) * cols);
    else this.f32.fill(0, acc, acc + cols);
    const idx = this.at.idx / 4;
    const w = this.at.w / 4;
    for (let t = 0; t < ids.length; t++) {
      this.i32[idx + t] = ids[t]!;
      this.f32[w + t] = weights[ids[t]!]!;
    }
    this.k.gatherAxpy(this.at.acc, this.at.hidden, this.stride, this.at.idx, this.at.w, ids.length);
    out.set(this.f32.subarray(acc, acc + this.width), outRow * this.width);
  }
}
