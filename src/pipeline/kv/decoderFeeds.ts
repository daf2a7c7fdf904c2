/**
 * Feeding decoder.onnx its KV cache: the past of one run is the present of the one before. One
 * function for the engine and the tests, so both drive the graph the same way.
 */
import * as ort from 'onnxruntime-node';
import { DECODER_IO } from '../../format/graphNames';
import type { KvDtype } from '../../format/modelManifest';
import { KvSlicer } from './kvSlice';

export type { KvDtype };

/** The decoder's cache shape: what `decoderFeeds` needs to know of the model. */
export interface KvShape {
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly kvDtype: KvDtype;
}

/** Present tensors by name, as one decoder run returned them: the next run's past. */
export type KvCache = Record<string, ort.Tensor>;

/** The feeds of one decoder run on `embeds` (S, H) after `past` cached positions. */
export function decoderFeeds(d: KvShape, embeds: Float32Array, cache: KvCache | undefined, past: number): Record<string, ort.Tensor> {
  const s = embeds.length / d.hiddenSize;
  const feeds: Record<string, ort.Tensor> = {
    [DECODER_IO.embeds]: new ort.Tensor('float32', embeds, [1, s, d.hiddenSize]),
    [DECODER_IO.seqlensK]: new ort.Tensor('int32', Int32Array.of(past + s - 1), [1]),
    [DECODER_IO.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(past + s), []),
  };
  for (let i = 0; i < d.numLayers; i++) {
    feeds[DECODER_IO.pastKey(i)] = cache?.[DECODER_IO.presentKey(i)] ?? emptyKv(d);
    feeds[DECODER_IO.pastValue(i)] = cache?.[DECODER_IO.presentValue(i)] ?? emptyKv(d);
  }
  return feeds;
}

function emptyKv(d: KvShape): ort.Tensor {
  const dims = [1, d.numKvHeads, 0, d.headDim];
  return d.kvDtype === 'float16'
    ? new ort.Tensor('float16', new Uint16Array(0), dims)
    : new ort.Tensor('float32', new Float32Array(0), dims);
}

/** The first `length` positions of every present tensor (1, kv, T, d). */
export function truncateCache(cache: KvCache, length: number, layers: number): KvCache {
  const out: KvCache = {};
  for (const name of presentNames(layers)) {
    const t = cache[name]!;
    const [b, heads, total, d] = t.dims as [number, number, number, number];
    if (total === length) {
      out[name] = t;
      continue;
    }
    const src = t.data as Float32Array | Uint16Array;
    const dst = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(b * heads * length * d);
    for (let hh = 0; hh < b * heads; hh++) dst.set(src.subarray(hh * total * d, hh * total * d + length * d), hh * length * d);
    const dims = [b, heads, length, d];
    out[name] =
      t.type === 'float16' ? new ort.Tensor('float16', dst as Uint16Array, dims) : new ort.Tensor('float32', dst as Float32Array, dims);
  }
  return out;
}

/** Every layer's present key and value names: what a cache holds (a run also returns logits and `new.*`). */
function presentNames(layers: number): string[] {
  return Array.from({ length: layers }, (_, i) => [DECODER_IO.presentKey(i), DECODER_IO.presentValue(i)]).flat();
}

/**
 * A conversation's KV cache as the engine drives it: `length` positions held, a decoder run
 * appends S more. Two ways to hold it, the same numbers either way (tested):
 * - `GrowingKvCache`: each run returns the cache grown by S as new tensors (any provider; every
 *   run allocates and copies the whole cache, so decoding slows as the context grows). On WebGPU
 *   the decoder session leaves its present tensors on the GPU (`decoderOutputLocations`), so the
 *   cache never crosses to the CPU and back: only the logits do;
 * - `InPlaceKvCache`: fixed-capacity buffers the engine holds; each run reads them whole as its
 *   past (GroupQueryAttention takes the first P positions, P from seqlens_k) and returns only its
 *   own S positions (`new.*`), which are written in after P. Nothing of size P crosses between
 *   onnxruntime and JavaScript, which matters because onnxruntime-node copies every output it
 *   returns (docs/onnxruntime-node.md). CPU provider, decoders built with `new.*` outputs.
 */
export interface DecoderKvCache {
  /** Positions whose keys and values are held. */
  readonly length: number;
  /** Keeps the first `length` positions (a follow-up reusing a shorter prefix). */
  truncate(length: number): void;
  /** Makes room for `positions` in all (a prompt about to be filled), so that filling it does not grow the cache chunk by chunk. */
  reserve(positions: number): void;
  /** One decoder run on `embeds` (S, H) after the positions held; returns the last position's logits. */
  run(session: ort.InferenceSession, embeds: Float32Array): Promise<Float32Array>;
  /** Frees what the cache holds on a GPU; a run in flight finishes first. */
  dispose(): void;
}

type Run = (
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  fetches?: Record<string, ort.Tensor | null>,
) => Promise<Record<string, ort.Tensor>>;

const plainRun: Run = (session, feeds, fetches) => (fetches ? session.run(feeds, fetches) : session.run(feeds));

export class GrowingKvCache implements DecoderKvCache {
  private present: KvCache | undefined;
  private held = 0;
  /** Set by truncate, done at the next run: cutting tensors that live on a GPU takes a graph run. */
  private cutTo: number | undefined;
  private running = false;
  private disposed = false;

  constructor(
    private readonly shape: KvShape,
    private readonly runner: Run = plainRun,
    /** Cuts a tensor the decoder left on the GPU (undefined: the CPU provider). */
    private readonly gpuSlicer?: KvSlicer,
  ) {}

  get length(): number {
    return this.cutTo ?? this.held;
  }

  truncate(length: number): void {
    if (length < this.length) this.cutTo = length;
  }

  reserve(): void {}

  async run(session: ort.InferenceSession, embeds: Float32Array): Promise<Float32Array> {
    if (this.disposed) throw new Error('the KV cache was disposed');
    this.running = true;
    try {
      await this.applyCut();
      const out = await this.runner(session, decoderFeeds(this.shape, embeds, this.present, this.held));
      releaseGpu(this.present);
      this.present = out;
      this.held += embeds.length / this.shape.hiddenSize;
      return out[DECODER_IO.logits]!.data as Float32Array;
    } finally {
      this.running = false;
      if (this.disposed) this.release();
    }
  }

  dispose(): void {
    this.disposed = true;
    if (!this.running) this.release();
  }

  private release(): void {
    releaseGpu(this.present);
    this.present = undefined;
  }

  private async applyCut(): Promise<void> {
    const length = this.cutTo;
    if (length === undefined) return;
    const before = this.present;
    if (length === 0 || !before) this.present = undefined;
    else if (this.gpuSlicer && Object.values(before).some((t) => t.location === 'gpu-buffer')) {
      const cut: KvCache = {};
      for (const name of presentNames(this.shape.numLayers)) cut[name] = await this.gpuSlicer(before[name]!, length);
      this.present = cut;
    } else this.present = truncateCache(before, length, this.shape.numLayers);
    releaseGpu(before);
    this.held = length;
    this.cutTo = undefined;
  }
}

/** Frees the GPU buffers among a cache's tensors (tensors on the CPU are the garbage collector's). */
function releaseGpu(cache: KvCache | undefined): void {
  for (const t of Object.values(cache ?? {})) if (t.location === 'gpu-buffer') t.dispose();
}

/**
 * Where the decoder session leaves its outputs: on WebGPU the present tensors stay on the GPU as
 * the next run's past (onnxruntime-node binds them through IO binding); the logits come to the CPU.
 */
export function decoderOutputLocations(numLayers: number): Record<string, 'cpu' | 'gpu-buffer'> {
  const where: Record<string, 'cpu' | 'gpu-buffer'> = { [DECODER_IO.logits]: 'cpu' };
  for (const name of presentNames(numLayers)) where[name] = 'gpu-buffer';
  return where;
}

/**
 * Capacity grows in steps of this many positions. GroupQueryAttention's time grows with the
 * capacity it is given, used or not (measured at 7B shapes: ~1.5 us per unused position per
 * layer, as much as 10% of a short-context token with 512 spare positions), while growing costs a
 * copy of the cache: a step of 64 copies it once per 64 tokens (docs/onnxruntime-node.md).
 */
const GROWTH = 64;

export class InPlaceKvCache implements DecoderKvCache {
  /** (1, kv, capacity, d) per present name. */
  private buffers: KvCache = {};
  private capacity = 0;
  private held = 0;

  constructor(
    private readonly shape: KvShape,
    /** The model's context: the most positions ever needed. */
    private readonly maxPositions: number,
    private readonly runner: Run = plainRun,
  ) {}

  get length(): number {
    return this.held;
  }

  truncate(length: number): void {
    this.held = Math.min(this.held, length); // positions past it are overwritten as they are filled again
  }

  reserve(positions: number): void {
    if (positions <= this.capacity) return;
    const capacity = Math.min(this.maxPositions, Math.ceil(positions / GROWTH) * GROWTH);
    const { numKvHeads: heads, headDim: d, kvDtype } = this.shape;
    const next: KvCache = {};
    for (const name of presentNames(this.shape.numLayers)) {
      const data = kvDtype === 'float16' ? new Uint16Array(heads * capacity * d) : new Float32Array(heads * capacity * d);
      const old = this.buffers[name]?.data as Float32Array | Uint16Array | undefined;
      // each head's positions are contiguous: copy the held ones to the new stride
      if (old)
        for (let h = 0; h < heads; h++)
          data.set(old.subarray(h * this.capacity * d, h * this.capacity * d + this.held * d), h * capacity * d);
      const dims = [1, heads, capacity, d];
      next[name] =
        kvDtype === 'float16'
          ? new ort.Tensor('float16', data as Uint16Array, dims)
          : new ort.Tensor('float32', data as Float32Array, dims);
    }
    this.buffers = next;
    this.capacity = capacity;
  }

  async run(session: ort.InferenceSession, embeds: Float32Array): Promise<Float32Array> {
    const s = embeds.length / this.shape.hiddenSize;
    this.reserve(this.held + s);
    // The whole buffers go in as the past (GroupQueryAttention reads only the first P positions,
    // P from seqlens_k); only this run's positions come out, and are written in after P.
    const fetches: Record<string, null> = { [DECODER_IO.logits]: null };
    for (let i = 0; i < this.shape.numLayers; i++) fetches[DECODER_IO.newKey(i)] = fetches[DECODER_IO.newValue(i)] = null;
    const out = await this.runner(session, decoderFeeds(this.shape, embeds, this.held > 0 ? this.buffers : undefined, this.held), fetches);
    const { numKvHeads: heads, headDim: d } = this.shape;
    for (let i = 0; i < this.shape.numLayers; i++) {
      for (const [name, fresh] of [
        [DECODER_IO.presentKey(i), DECODER_IO.newKey(i)],
        [DECODER_IO.presentValue(i), DECODER_IO.newValue(i)],
      ] as const) {
        const dst = this.buffers[name]!.data as Float32Array | Uint16Array;
        const src = out[fresh]!.data as Float32Array | Uint16Array;
        for (let h = 0; h < heads; h++) dst.set(src.subarray(h * s * d, (h + 1) * s * d), (h * this.capacity + this.held) * d);
      }
    }
    this.held += s;
    return out[DECODER_IO.logits]!.data as Float32Array;
  }

  dispose(): void {} // CPU buffers: the garbage collector's
}
