/**
 * The WebGPU provider against the CPU, on whatever adapter this machine has: in CI, Mesa's
 * software Vulkan driver (lavapipe), which `.ci/run` installs. Skipped where WebGPU cannot start,
 * unless WEBGPU_REQUIRED=1 (CI sets it), so the GPU path cannot silently stop being tested.
 *
 * Tolerance, and why: WebGPU's kernels sum in other orders than the CPU's and its exp, erf and
 * reciprocal square roots are the shader compiler's, so outputs differ by rounding that grows
 * through the layers. Measured on lavapipe (Mesa 25.0, 2026-11-27), as the largest difference
 * relative to the largest value: vision tower 2.9e-3 (24 layers), projector 3e-7, demo decoder
 * logits 5.6e-3 over 13 steps, tiny float16 decoder 1.5e-2. The bounds, 2e-2 for float32 and 5e-2
 * for float16, leave about 3.5x room. Greedy tokens must agree wherever the CPU's top two logits
 * are more than 0.05 apart: closer than that, rounding may honestly flip the choice (the issue that
 * added these tests saw one flip at a margin of 0.002). Each run prints its figures as diagnostics.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildFromCheckpoint } from '../../../../src/builder/buildModel';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { decoderOutputLocations, GrowingKvCache } from '../../../../src/pipeline/kv/decoderFeeds';
import { DECODER_IO, PROJECTOR_IO, VISION_IO } from '../../../../src/format/graphNames';
import { gpuKvSlicer } from '../../../../src/pipeline/kv/kvSlice';
import { loadManifest } from '../../../../src/format/modelManifest';
import { preprocessImage } from '../../../../src/pipeline/image/preprocess';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { vulkanDrivers } from '../../../../src/pipeline/runtime/vulkanDrivers';
import { EngineClient } from '../../../../src/worker/engineClient';
import { decoderStep, relativeError, scratchDir, tinyCheckpoint } from '../../../helpers/checkpoints';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const DEMO = demoModelDir();
const BIN = join(__dirname, '..', '..', '..', '..', 'bin', 'prumerge.js');
const CLEAR_MARGIN = 0.05;
const FP32_TOLERANCE = 2e-2;
const FP16_TOLERANCE = 5e-2;

/** Why WebGPU cannot start here, or undefined when it can (asked in a child: a failed start prints native warnings). */
function webgpuMissing(): string | undefined {
  const script = `require('onnxruntime-node').InferenceSession.create(${JSON.stringify(join(DEMO, 'projector.onnx'))}, { executionProviders: ['webgpu'] })
    .then(() => process.exit(0), (e) => { process.stdout.write(e.message.split('\\n')[0]); process.exit(1); })`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  return r.status === 0 ? undefined : r.stdout || `exit ${r.status}`;
}

const missing = webgpuMissing();
const skip = missing && process.env['WEBGPU_REQUIRED'] !== '1' ? `no WebGPU adapter here (${missing})` : false;

const open = (path: string, ep: 'cpu' | 'webgpu'): Promise<ort.InferenceSession> =>
  ort.InferenceSession.create(path, { executionProviders: [ep], graphOptimizationLevel: 'all' });

function topTwo(logits: Float32Array): { best: number; margin: number } {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) if (i !== best) second = Math.max(second, logits[i]!);
  return { best, margin: logits[best]! - second };
}

/**
 * Prefill `embeds` then decode `steps` tokens with the CPU's choice fed to both providers
 * (teacher forcing), comparing logits at every step and greedy choices where the margin is clear.
 */
async function compareDecoders(
  t: { diagnostic(msg: string): void },
  dir: string,
  shape: { hiddenSize: number; numLayers: number; numKvHeads: number; headDim: number },
  embeds: Float32Array,
  embedOf: (id: number) => Float32Array,
  steps: number,
  tolerance: number,
): Promise<void> {
  const cpu = await open(join(dir, 'decoder.onnx'), 'cpu');
  const gpu = await open(join(dir, 'decoder.onnx'), 'webgpu');
  const config = { text: shape } as Parameters<typeof decoderStep>[1];
  let a = await decoderStep(cpu, config, embeds, undefined, 0);
  let b = await decoderStep(gpu, config, embeds, undefined, 0);
  let past = embeds.length / shape.hiddenSize;
  let worst = 0;
  let clear = 0;
  for (let step = 0; ; step++) {
    worst = Math.max(worst, relativeError(b.logits, a.logits));
    const ref = topTwo(a.logits);
    if (ref.margin > CLEAR_MARGIN) {
      clear++;
      assert.equal(topTwo(b.logits).best, ref.best, `step ${step}: greedy token (CPU margin ${ref.margin.toFixed(4)})`);
    }
    if (step === steps) break;
    const next = embedOf(ref.best);
    a = await decoderStep(cpu, config, next, a.cache, past);
    b = await decoderStep(gpu, config, next, b.cache, past);
    past++;
  }
  await Promise.all([cpu.release(), gpu.release()]);
  t.diagnostic(
    `decoder logits: max relative difference ${worst.toExponential(2)} over ${steps + 1} steps; ${clear} clear-margin choices compared`,
  );
  assert.ok(worst < tolerance, `decoder logits differ by ${worst}`);
}

describe('WebGPU against the CPU', { skip }, () => {
  it('demo model graphs: vision tower, projector, and the decoder over its KV cache', async (t) => {
    const engine = await Engine.load(DEMO, { ep: 'cpu' });
    const m = engine.manifest;
    const pre = await preprocessImage(SAMPLE, { config: m.preprocess });
    const size = m.vision.imageSize;
    const pixels = { [VISION_IO.pixels]: new ort.Tensor('float32', pre.pixelValues, [1, 3, size, size]) };
    const [vc, vg] = [await open(join(DEMO, m.vision.graph), 'cpu'), await open(join(DEMO, m.vision.graph), 'webgpu')];
    const [oc, og] = [await vc.run(pixels), await vg.run(pixels)];
    for (const name of [VISION_IO.hidden, VISION_IO.q, VISION_IO.k]) {
      const err = relativeError(og[name]!.data as Float32Array, oc[name]!.data as Float32Array);
      t.diagnostic(`vision ${name}: max relative difference ${err.toExponential(2)}`);
      assert.ok(err < FP32_TOLERANCE, `vision ${name} differs by ${err}`);
    }
    const hidden = oc[VISION_IO.hidden]!.data as Float32Array;
    const features = hidden.subarray(m.vision.hiddenSize); // every patch row, CLS dropped
    const feed = {
      [PROJECTOR_IO.features]: new ort.Tensor('float32', features, [features.length / m.vision.hiddenSize, m.vision.hiddenSize]),
    };
    const [pc, pg] = [await open(join(DEMO, m.projector.graph), 'cpu'), await open(join(DEMO, m.projector.graph), 'webgpu')];
    const embeds = (await pc.run(feed))[PROJECTOR_IO.embeds]!.data as Float32Array;
    const err = relativeError((await pg.run(feed))[PROJECTOR_IO.embeds]!.data as Float32Array, embeds);
    t.diagnostic(`projector: max relative difference ${err.toExponential(2)}`);
    assert.ok(err < FP32_TOLERANCE, `projector differs by ${err}`);
    await Promise.all([vc.release(), vg.release(), pc.release(), pg.release()]);

    const h = m.decoder.hiddenSize;
    const prompt = embeds.subarray(0, 64 * h); // 64 visual tokens as the prompt
    const table = (id: number): Float32Array => {
      const row = new Float32Array(h);
      for (let i = 0; i < h; i++) row[i] = Math.sin(id * 0.37 + i * 0.11); // any fixed embedding will do
      return row;
    };
    await compareDecoders(t, DEMO, m.decoder, prompt, table, 12, FP32_TOLERANCE);
    await engine.dispose();
  });

  it('a float16 model (weights, activations and KV cache in float16), where the adapter opens it', async (t) => {
    const ckpt = await tinyCheckpoint({ seed: 14, std: 0.3 });
    const dir = join(scratchDir('webgpu-fp16'), 'model');
    const manifest = await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'fp16' });
    let gpu: ort.InferenceSession;
    try {
      gpu = await open(join(dir, 'decoder.onnx'), 'webgpu');
    } catch (e) {
      t.diagnostic(`float16 on this adapter: ${(e as Error).message.split('\n')[0]}`);
      t.skip('the adapter does not run the float16 graph');
      return;
    }
    await gpu.release();
    const h = manifest.decoder.hiddenSize;
    const embeds = Float32Array.from({ length: 9 * h }, (_, i) => Math.cos(i * 0.013));
    const table = (id: number): Float32Array => Float32Array.from({ length: h }, (_, i) => Math.sin(id * 0.5 + i * 0.07));
    await compareDecoders(t, dir, manifest.decoder, embeds, table, 6, FP16_TOLERANCE);
  });

  it("the KV cache stays on the GPU between decoder runs, and cut back for a follow-up gives the CPU's logits", async (t) => {
    const m = (await loadManifest(DEMO)).decoder;
    const path = join(DEMO, 'decoder.onnx');
    const cpu = await open(path, 'cpu');
    const gpu = await ort.InferenceSession.create(path, {
      executionProviders: ['webgpu'],
      graphOptimizationLevel: 'all',
      preferredOutputLocation: decoderOutputLocations(m.numLayers),
    });
    const slicer = gpuKvSlicer('webgpu', m.kvDtype);
    const locations: string[] = [];
    const recording = async (session: ort.InferenceSession, feeds: Record<string, ort.Tensor>) => {
      const out = await session.run(feeds);
      locations.push(out[DECODER_IO.presentKey(0)]!.location);
      return out;
    };
    const a = new GrowingKvCache(m);
    const b = new GrowingKvCache(m, recording, slicer);
    const rows = (n: number, seed: number): Float32Array =>
      Float32Array.from({ length: n * m.hiddenSize }, (_, i) => Math.sin(seed + i * 0.013));
    let worst = 0;
    const both = async (embeds: Float32Array): Promise<void> => {
      worst = Math.max(worst, relativeError(await b.run(gpu, embeds), await a.run(cpu, embeds)));
    };
    await both(rows(20, 1));
    for (let i = 0; i < 3; i++) await both(rows(1, 10 + i));
    for (const cache of [a, b]) cache.truncate(15); // a follow-up whose prompt parts from the cache at position 15
    assert.equal(b.length, 15);
    await both(rows(4, 20));
    for (let i = 0; i < 2; i++) await both(rows(1, 30 + i));
    assert.equal(b.length, 21);
    assert.ok(
      locations.every((l) => l === 'gpu-buffer'),
      `present tensors came back in ${locations.join(', ')}`,
    );
    t.diagnostic(`GPU-resident cache with a cut: max relative difference of the logits ${worst.toExponential(2)} over 8 runs`);
    assert.ok(worst < FP32_TOLERANCE, `logits differ by ${worst}`);
    b.dispose();
    await Promise.all([cpu.release(), gpu.release(), slicer.release()]);
  });

  describe('the engine on WebGPU', () => {
    let gpu: Engine;
    let cpu: Engine;
    before(async () => {
      gpu = await Engine.load(DEMO, { ep: 'webgpu' });
      cpu = await Engine.load(DEMO, { ep: 'cpu' });
    });
    after(async () => {
      await gpu?.dispose();
      await cpu?.dispose();
    });

    for (const mode of ['none', 'prumerge', 'prumerge+', 'topk:32']) {
      it(`${mode}: answers, then follows up from its KV cache`, async (t) => {
        const reduce = parseReduceMode(mode);
        const ask = { image: SAMPLE, question: 'What does this diagram show?', reduce, maxNewTokens: 8 };
        const [g, c] = [await gpu.ask(ask), await cpu.ask(ask)];
        assert.equal(g.ep, 'webgpu');
        assert.ok(g.tokens.length > 0);
        // the reduction is decided on the vision tower's outputs, which agree to rounding: a patch
        // whose attention sits at the outlier bound may fall either side of it
        t.diagnostic(`${mode}: ${g.visual.kept} visual tokens on WebGPU, ${c.visual.kept} on the CPU`);
        assert.ok(Math.abs(g.visual.kept - c.visual.kept) <= Math.max(2, 0.05 * c.visual.kept), `${g.visual.kept} vs ${c.visual.kept}`);
        const follow = await gpu.ask({ ...ask, question: 'And the arrows?', followUp: true });
        assert.equal(follow.conversation, 'continued');
        assert.ok(follow.reusedTokens >= g.inputIds.length, 'the first answer came from the cache');
      });
    }

    it('Stop before the first token leaves nothing written', async () => {
      const controller = new AbortController();
      const r = await gpu.ask(
        { image: SAMPLE, question: 'What is this?', reduce: parseReduceMode('prumerge'), maxNewTokens: 8 },
        { signal: controller.signal, onStage: (s) => s === 'prefill' && controller.abort() },
      );
      assert.equal(r.stopReason, 'cancelled');
      assert.deepEqual(r.tokens, []);
    });
  });

  it('the worker runs on WebGPU when asked, and says so', async () => {
    const client = new EngineClient({ workerPath: join(__dirname, '..', '..', '..', '..', 'dist', 'worker.js'), idleTimeoutMs: 0 });
    try {
      const spec = { modelDir: DEMO, ep: 'webgpu' as const };
      assert.equal((await client.load(spec)).ep, 'webgpu');
      const r = await client.ask({ ...spec, image: SAMPLE, question: 'What is this?', reduce: { kind: 'prumerge' }, maxNewTokens: 4 });
      assert.equal(r.ep, 'webgpu');
    } finally {
      await client.dispose();
    }
  });

  it('prumerge ask: auto passes over a software adapter and says so; --ep webgpu uses it; no native warning reaches the terminal', () => {
    const ask = (...extra: string[]): { stderr: string; status: number | null } =>
      spawnSync(process.execPath, [BIN, 'ask', SAMPLE, 'What is this?', '--max-new-tokens', '4', ...extra], { encoding: 'utf8' });
    // our own stderr lines: the figures, notes; anything else came from native code
    const foreign = (stderr: string): string[] => stderr.split('\n').filter((l) => l && !/^\[.*\]$/.test(l) && !/^note: /.test(l));
    if (vulkanDrivers().every((d) => d.software !== undefined)) {
      const auto = ask();
      assert.equal(auto.status, 0, auto.stderr);
      assert.match(auto.stderr, /^note: running on the CPU; webgpu: skipped, lavapipe is a software Vulkan driver/m);
      assert.match(auto.stderr, /, cpu with \d+ threads, stopped: /);
      assert.deepEqual(foreign(auto.stderr), []);
    }
    const forced = ask('--ep', 'webgpu');
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stderr, /, webgpu, stopped: /);
    assert.deepEqual(foreign(forced.stderr), []);
    if (vulkanDrivers().every((d) => d.software !== undefined)) {
      // Dawn warns about lavapipe's limits on every start: shown with --verbose only
      assert.match(ask('--ep', 'webgpu', '--verbose').stderr, /^\[worker\] Warning: /m);
    }
  });
});
