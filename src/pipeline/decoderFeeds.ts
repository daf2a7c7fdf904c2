/**
 * Feeding decoder.onnx its KV cache: the past of one run is the present of the one before. One
 * function for the engine and the tests, so both drive the graph the same way.
 */
import * as ort from 'onnxruntime-node';
import { DECODER_IO } from './graphNames';

export type KvDtype = 'float32' | 'float16';

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
  for (let i = 0; i < layers; i++) {
    for (const name of [DECODER_IO.presentKey(i), DECODER_IO.presentValue(i)]) {
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
  }
  return out;
}
