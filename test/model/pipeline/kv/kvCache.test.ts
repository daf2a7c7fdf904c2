/**
 * The KV cache held in place (fixed-capacity buffers that GroupQueryAttention writes into) against
 * the cache returned by every run: the same logits, to the bit, through chunked prefill, decoding,
 * a follow-up that keeps a shorter prefix and overwrites what came after it, for float32 and
 * float16 caches, and (float32, where the context is long enough) growth past the capacity reserved.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { DecoderKvCache, GrowingKvCache, InPlaceKvCache, KvShape } from '../../../../src/pipeline/kv/decoderFeeds';
import { demoModelDir } from '../../../../src/pipeline/engine/engine';
import { loadManifest } from '../../../../src/format/modelManifest';
import { scratchDir, tinyCheckpoint } from '../../../helpers/checkpoints';

/** Deterministic input rows: `count` positions starting at `from` of a fixed sequence of `variant`. */
function rows(h: number, from: number, count: number, variant = 0): Float32Array {
  return Float32Array.from({ length: count * h }, (_, i) => Math.sin((from * h + i) * 0.013 + variant));
}

async function sameLogits(dir: string, maxPositions: number): Promise<void> {
  const d: KvShape = (await loadManifest(dir)).decoder;
  const session = await ort.InferenceSession.create(join(dir, 'decoder.onnx'));
  const h = d.hiddenSize;
  const growing: DecoderKvCache = new GrowingKvCache(d);
  const inPlace: DecoderKvCache = new InPlaceKvCache(d, maxPositions);
  inPlace.reserve(20); // small on purpose: the steps below outgrow it several times
  const both = async (embeds: Float32Array): Promise<void> => {
    const [a, b] = [await growing.run(session, embeds), await inPlace.run(session, embeds)];
    assert.deepEqual(b, a, `logits after ${growing.length} positions`);
    assert.equal(inPlace.length, growing.length);
  };
  await both(rows(h, 0, 25)); // a prompt in chunks
  await both(rows(h, 25, 25));
  for (let p = 50; p < 55; p++) await both(rows(h, p, 1)); // decoding
  // a follow-up that keeps 40 positions and writes others over 40..
  growing.truncate(40);
  inPlace.truncate(40);
  await both(rows(h, 40, 30, 1));
  for (let p = 70; p < Math.min(300, maxPositions); p++) await both(rows(h, p, 1, 1)); // past the capacity, every 64 positions: regrown, copied
  await session.release();
}

describe('KV cache in place', () => {
  it('float32 (the demo decoder): bit-identical logits to the growing cache', async () => {
    await sameLogits(demoModelDir(), 2048);
  });

  it('float16 (a tiny fp16 decoder): bit-identical logits to the growing cache', async () => {
    const dir = join(scratchDir('kv-fp16'), 'model');
    await buildFromCheckpoint((await tinyCheckpoint({ seed: 21, std: 0.3 })).dir, { out: dir, dtype: 'fp16' });
    await sameLogits(dir, 256);
  });
});
