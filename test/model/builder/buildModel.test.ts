/**
 * The builder's graphs against the float64 restatement of the Hugging Face forward passes
 * (test/reference/llavaReference.ts), on tiny random checkpoints in both naming schemes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { BuildProgress, buildFromCheckpoint } from '../../../src/builder/buildModel';
import { BlockSize } from '../../../src/onnx/ops';
import { featureLayer } from '../../../src/families/llavaConfig';
import { DECODER_IO } from '../../../src/format/graphNames';
import { SeededRandom } from '../../../src/common/random';
import { loadManifest, VisionDtype } from '../../../src/format/modelManifest';
import { decoderStep, relativeError, scratchDir, textRef, TinyCheckpoint, tinyCheckpoint, visionRef } from '../../helpers/checkpoints';
import { clipVision, embedTokens, llamaLogits, projector } from '../../reference/llavaReference';

const TOL = 1e-4;
/** float16 keeps 11 significant bits: relative errors of a few 1e-3 through a few layers. */
const TOL_FP16 = 2e-2;

interface Built {
  readonly ckpt: TinyCheckpoint;
  readonly dir: string;
  readonly progress: BuildProgress[];
}

async function build(
  ckpt: TinyCheckpoint,
  dtype: 'fp32' | 'fp16' | 'int4' = 'fp32',
  more: { visionDtype?: VisionDtype; kvDtype?: 'float32' | 'float16'; blockSize?: BlockSize } = {},
): Promise<Built> {
  const dir = join(scratchDir('model'), 'model');
  const progress: BuildProgress[] = [];
  await buildFromCheckpoint(ckpt.dir, { out: dir, dtype, ...more, onProgress: (p) => progress.push(p) });
  return { ckpt, dir, progress };
}

function flat(rows: ArrayLike<number>[]): Float64Array {
  const out: number[] = [];
  for (const r of rows) out.push(...Array.from(r));
  return Float64Array.from(out);
}

/** The built vision tower against the float64 reference on random pixels: hidden_states[-2] and the last layer's q / k. */
async function visionErrors(b: Built): Promise<{ errors: { hidden: number; q: number; k: number }; ref: ReturnType<typeof clipVision> }> {
  const { config, weights } = b.ckpt;
  const v = config.vision;
  const f = featureLayer(config);
  const pixels = new SeededRandom(3).normals(3 * v.imageSize * v.imageSize);
  const vision = await ort.InferenceSession.create(join(b.dir, 'vision.onnx'));
  const out = await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, v.imageSize, v.imageSize]) });
  const ref = clipVision(visionRef(config), weights, pixels);
  const errors = {
    hidden: relativeError(out['hidden']!.data as Float32Array, flat(ref.hiddenStates[f]!)),
    q: relativeError(out['q']!.data as Float32Array, flat(ref.q[f]!)),
    k: relativeError(out['k']!.data as Float32Array, flat(ref.k[f]!)),
  };
  return { errors, ref };
}

async function checkGraphs(b: Built, tol = TOL): Promise<void> {
  const { config, weights } = b.ckpt;
  const v = config.vision;
  const f = featureLayer(config);

  const { errors, ref } = await visionErrors(b);
  for (const [name, e] of Object.entries(errors)) assert.ok(e < tol, `vision ${name}`);

  // projector on the patch rows
  const patches = ref.hiddenStates[f]!.slice(1);
  const proj = await ort.InferenceSession.create(join(b.dir, 'projector.onnx'));
  const embeds = await proj.run({
    image_features: new ort.Tensor('float32', Float32Array.from(flat(patches)), [patches.length, v.hiddenSize]),
  });
  const refEmbeds = projector(weights, patches, config.text.hiddenSize, config.projectorHiddenAct);
  assert.ok(relativeError(embeds['image_embeds']!.data as Float32Array, flat(refEmbeds)) < tol, 'projector');

  // decoder: a prompt of text tokens around the visual tokens, then three decode steps
  const t = config.text;
  const ids = [1, 3148, 1001, 29901];
  const rows = [
    ...embedTokens(textRef(config), weights, ids),
    ...refEmbeds.slice(0, 5),
    ...embedTokens(textRef(config), weights, [13, 5618, 338]),
  ];
  const next = embedTokens(textRef(config), weights, [450, 1967, 3697]);
  const all = [...rows, ...next];
  const refLogits = llamaLogits(textRef(config), weights, all);
  const decoder = await ort.InferenceSession.create(join(b.dir, 'decoder.onnx'));
  let step = await decoderStep(decoder, config, Float32Array.from(flat(rows)), undefined, 0);
  assert.ok(relativeError(step.logits, refLogits[rows.length - 1]!) < tol, 'decoder prefill logits');
  for (let i = 0; i < next.length; i++) {
    step = await decoderStep(decoder, config, Float32Array.from(next[i]!), step.cache, rows.length + i);
    assert.ok(relativeError(step.logits, refLogits[rows.length + i]!) < tol, `decoder step ${i + 1} logits`);
  }
  assert.equal(step.logits.length, t.vocabSize);
}

describe('model builder: graphs match the Hugging Face forward pass (float64 reference)', () => {
  it('llava-hf hub layout, one model.safetensors, GQA (4 query heads, 2 key/value heads)', async () => {
    const b = await build(await tinyCheckpoint({ seed: 11, std: 0.3 }));
    await checkGraphs(b);
  });

  it('transformers model.* layout, bf16, 3 shards with an index, no GQA, tied embeddings', async () => {
    const ckpt = await tinyCheckpoint({ seed: 12, std: 0.3, layout: 'transformers', dtype: 'BF16', shards: 3 }, (c) => {
      const text = c['text_config'] as Record<string, unknown>;
      text['num_key_value_heads'] = 4;
      text['tie_word_embeddings'] = true;
    });
    assert.ok(existsSync(join(ckpt.dir, 'model.safetensors.index.json')));
    assert.ok(readdirSync(ckpt.dir).some((f) => f.startsWith('model-00003-of-00003')));
    await checkGraphs(await build(ckpt));
  });

  it('fp16 weights and activations, float32 at the edges, a float16 KV cache', async () => {
    const b = await build(await tinyCheckpoint({ seed: 14, std: 0.3 }), 'fp16');
    await checkGraphs(b, TOL_FP16);
    const m = await loadManifest(b.dir);
    assert.equal(m.decoder.kvDtype, 'float16');
  });

  it('float32 layers with attention and the KV cache in float16 (--kv-dtype float16)', async () => {
    const b = await build(await tinyCheckpoint({ seed: 16 }), 'fp32', { kvDtype: 'float16' });
    const m = await loadManifest(b.dir);
    assert.equal(m.decoder.kvDtype, 'float16');
    const decoder = await ort.InferenceSession.create(join(b.dir, 'decoder.onnx'));
    const out = await decoderStep(decoder, b.ckpt.config, new SeededRandom(5).normals(3 * b.ckpt.config.text.hiddenSize), undefined, 0);
    assert.equal(out.cache[DECODER_IO.presentKey(0)]!.type, 'float16');
    await checkGraphs(b, TOL_FP16);
  });

  it('quick_gelu projector and feature layer -3', async () => {
    const ckpt = await tinyCheckpoint({ seed: 13, std: 0.3 }, (c) => {
      c['projector_hidden_act'] = 'quick_gelu';
      c['vision_feature_layer'] = -3;
    });
    await checkGraphs(await build(ckpt));
  });
});

describe('model builder: KV cache and int4', () => {
  it('decoding with the cache gives the logits of recomputing the whole sequence', async () => {
    const b = await build(await tinyCheckpoint({ seed: 21, std: 0.3 }));
    const { config } = b.ckpt;
    const h = config.text.hiddenSize;
    const seq = new SeededRandom(5).normals(9 * h);
    const decoder = await ort.InferenceSession.create(join(b.dir, 'decoder.onnx'));
    let cached = await decoderStep(decoder, config, seq.slice(0, 4 * h), undefined, 0);
    cached = await decoderStep(decoder, config, seq.slice(4 * h, 7 * h), cached.cache, 4); // chunked prefill
    cached = await decoderStep(decoder, config, seq.slice(7 * h, 8 * h), cached.cache, 7);
    cached = await decoderStep(decoder, config, seq.slice(8 * h), cached.cache, 8);
    const whole = await decoderStep(decoder, config, seq, undefined, 0);
    assert.ok(relativeError(cached.logits, whole.logits) < 1e-5, `cached vs whole: ${relativeError(cached.logits, whole.logits)}`);
  });

  it('int4 decoder logits stay close to fp32 and pick the same tokens', async () => {
    const ckpt = await tinyCheckpoint({ seed: 22 }); // transformers' initializer range, std 0.02
    const fp32 = await build(ckpt);
    const int4 = await build(ckpt, 'int4');
    const { config } = ckpt;
    const h = config.text.hiddenSize;
    const a = await ort.InferenceSession.create(join(fp32.dir, 'decoder.onnx'));
    const q = await ort.InferenceSession.create(join(int4.dir, 'decoder.onnx'));
    const rng = new SeededRandom(6);
    let worst = 0;
    let agree = 0;
    const trials = 8;
    for (let i = 0; i < trials; i++) {
      const embeds = rng.normals(6 * h);
      const x = await decoderStep(a, config, embeds, undefined, 0);
      const y = await decoderStep(q, config, embeds, undefined, 0);
      worst = Math.max(worst, relativeError(y.logits, x.logits));
      if (argmax(x.logits) === argmax(y.logits)) agree++;
      assert.ok(topK(y.logits, 5).includes(argmax(x.logits)), 'the fp32 choice is among the int4 top 5');
    }
    console.log(`int4 vs fp32 logits: worst relative error ${worst.toFixed(4)}, same top token in ${agree} of ${trials}`);
    assert.ok(worst < 0.15, `int4 relative error ${worst}`);
    assert.ok(agree >= trials - 2);
    const sizes = (d: string): number =>
      Object.values(JSON.parse(readFileSync(join(d, 'model.json'), 'utf8')).files as Record<string, { bytes: number }>).reduce(
        (n, f) => n + f.bytes,
        0,
      );
    assert.ok(sizes(int4.dir) < sizes(fp32.dir));
  });
});

describe('model builder: int4 blocks and the KV cache type', () => {
  /** block_size of every MatMulNBits node in a graph, and how many there are. */
  function blockSizes(graph: string): Map<number, number> {
    const sizes = new Map<number, number>();
    for (const node of onnx.ModelProto.decode(readFileSync(graph)).graph!.node!) {
      if (node.opType !== 'MatMulNBits') continue;
      const size = Number(node.attribute!.find((a) => a.name === 'block_size')!.i);
      sizes.set(size, (sizes.get(size) ?? 0) + 1);
    }
    return sizes;
  }

  it('the language model in blocks of 128 and a float16 cache by default; an int4 vision tower in 32s; model.json says so', async () => {
    const ckpt = await tinyCheckpoint({ seed: 24 });
    const b = await build(ckpt, 'int4', { visionDtype: 'int4' });
    const t = ckpt.config.text;
    assert.deepEqual([...blockSizes(join(b.dir, 'decoder.onnx'))], [[128, t.numLayers * 7 + 1]]); // q k v o gate up down, lm_head
    assert.deepEqual([...blockSizes(join(b.dir, 'vision.onnx')).keys()], [32]);
    const m = await loadManifest(b.dir);
    assert.equal(m.decoder.blockSize, 128);
    assert.equal(m.decoder.kvDtype, 'float16');
  });

  it('takes 32 or 64 and a float32 cache on request; fp32 builds keep float32 and have no blocks', async () => {
    const ckpt = await tinyCheckpoint({ seed: 24 });
    for (const blockSize of [32, 64] as const) {
      const b = await build(ckpt, 'int4', { blockSize, kvDtype: 'float32' });
      assert.deepEqual([...blockSizes(join(b.dir, 'decoder.onnx')).keys()], [blockSize]);
      const m = await loadManifest(b.dir);
      assert.equal(m.decoder.blockSize, blockSize);
      assert.equal(m.decoder.kvDtype, 'float32');
    }
    const fp32 = await loadManifest((await build(ckpt)).dir);
    assert.equal(fp32.decoder.blockSize, undefined);
    assert.equal(fp32.decoder.kvDtype, 'float32');
  });
});

describe('model builder: a quantised vision tower', () => {
  // 8 bits leave each weight within half of 1/255 of its block's range, 4 bits within half of
  // 1/15: errors about 17x apart. Measured on this checkpoint (seed 23), relative to the largest
  // value: int8 hidden 6.6e-5, q 3.9e-3, k 3.8e-3; int4 1.1e-3, 6.6e-2, 6.5e-2 (q and k sit after
  // one more quantised layer, and the tiny tower's 32-wide rows average little). Bounds: 5x room.
  const BOUND = { int8: 2e-2, int4: 0.3 };
  for (const visionDtype of ['int8', 'int4'] as const) {
    it(`${visionDtype}: hidden, q and k stay near the float64 reference; model.json says so`, async () => {
      const ckpt = await tinyCheckpoint({ seed: 23 });
      const b = await build(ckpt, 'int4', { visionDtype });
      const { errors } = await visionErrors(b);
      console.log(`vision ${visionDtype}: relative errors ${JSON.stringify(errors)}`);
      for (const [name, e] of Object.entries(errors)) assert.ok(e < BOUND[visionDtype], `${name}: ${e}`);
      for (const [name, e] of Object.entries(errors)) assert.ok(e > 1e-6, `${name} is quantised (error ${e})`);
      assert.equal((await loadManifest(b.dir)).vision.dtype, visionDtype);
    });
  }

  it('refuses a quantised tower with float16 activations', async () => {
    const ckpt = await tinyCheckpoint({ seed: 24 });
    await assert.rejects(
      buildFromCheckpoint(ckpt.dir, { out: join(scratchDir('model'), 'm'), dtype: 'fp16', visionDtype: 'int8' }),
      /a vision tower in int8 takes float32 activations: use it with --dtype fp32 or int4, not fp16/,
    );
  });
});

describe('model builder: the folder it writes', () => {
  it('reads every tensor it planned, and writes a manifest that loads and verifies', async () => {
    const b = await build(await tinyCheckpoint({ seed: 31 }));
    const last = b.progress[b.progress.length - 1]!;
    assert.equal(last.tensorsRead, last.tensorsTotal);
    assert.equal(last.bytesRead, last.bytesTotal);
    const m = await loadManifest(b.dir, { verify: true });
    assert.equal(m.vision.grid, 4);
    assert.equal(m.tokenizer.imageTokenId, 32000);
    assert.equal(m.tokenizer.bosTokenId, 1);
    assert.equal(m.tokenizer.eosTokenId, 2);
    assert.equal(m.randomWeights, false);
    assert.equal(m.preprocess.shortestEdge, 56);
    assert.ok(!existsSync(`${b.dir}.partial`));
  });

  it('refuses an unsupported architecture before writing anything', async () => {
    const ckpt = await tinyCheckpoint({ seed: 32 });
    writeFileSync(
      join(ckpt.dir, 'config.json'),
      JSON.stringify({ ...ckpt.configJson, model_type: 'qwen2_vl', architectures: ['Qwen2VLForConditionalGeneration'] }),
    );
    const out = join(scratchDir('model'), 'm');
    await assert.rejects(buildFromCheckpoint(ckpt.dir, { out, dtype: 'fp32' }), /unsupported architecture.*qwen2_vl/);
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`));
  });

  it('names a tensor whose shape contradicts config.json, and leaves no folder behind', async () => {
    const ckpt = await tinyCheckpoint({ seed: 33 });
    const text = ckpt.configJson['text_config'] as Record<string, unknown>;
    writeFileSync(join(ckpt.dir, 'config.json'), JSON.stringify({ ...ckpt.configJson, text_config: { ...text, intermediate_size: 96 } }));
    const out = join(scratchDir('model'), 'm');
    await assert.rejects(
      buildFromCheckpoint(ckpt.dir, { out, dtype: 'fp32' }),
      /gate_proj\.weight has shape \[80, 64\], but config\.json implies \[96, 64\]/,
    );
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`));
  });

  it("takes the vision tower's image size when the checkpoint has no preprocessor_config.json", async () => {
    const ckpt = await tinyCheckpoint({ seed: 36 });
    rmSync(join(ckpt.dir, 'preprocessor_config.json'));
    const b = await build(ckpt);
    const m = await loadManifest(b.dir);
    // the tiny tower is 4 x 4 patches of 14 pixels
    assert.deepEqual([m.preprocess.shortestEdge, m.preprocess.cropWidth, m.preprocess.cropHeight], [56, 56, 56]);
  });

  it('refuses a preprocessor_config.json whose crop the vision tower cannot take', async () => {
    const ckpt = await tinyCheckpoint({ seed: 37 });
    writeFileSync(
      join(ckpt.dir, 'preprocessor_config.json'),
      JSON.stringify({ size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 } }),
    );
    const out = join(scratchDir('model'), 'm');
    await assert.rejects(
      buildFromCheckpoint(ckpt.dir, { out, dtype: 'fp32' }),
      /gives 336 x 336 pixel images, but the vision tower .* takes 56 x 56/,
    );
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`));
  });

  it('asks for tokenizer.json when it is missing', async () => {
    const ckpt = await tinyCheckpoint({ seed: 34 });
    rmSync(join(ckpt.dir, 'tokenizer.json'));
    await assert.rejects(buildFromCheckpoint(ckpt.dir, { out: join(scratchDir('model'), 'm'), dtype: 'fp32' }), /lacks tokenizer\.json/);
  });

  it('will not overwrite a folder that is not a model folder', async () => {
    const ckpt = await tinyCheckpoint({ seed: 35 });
    const out = scratchDir('precious');
    writeFileSync(join(out, 'notes.txt'), 'mine');
    await assert.rejects(buildFromCheckpoint(ckpt.dir, { out, dtype: 'fp32' }), /is not a model folder/);
    assert.ok(existsSync(join(out, 'notes.txt')));
  });
});

function topK(a: Float32Array, k: number): number[] {
  return Array.from(a.keys())
    .sort((x, y) => a[y]! - a[x]!)
    .slice(0, k);
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}
