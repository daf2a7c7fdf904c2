/**
 * The int8 vision tower: DynamicQuantizeMatMul against a float64 reference of the quantised
 * arithmetic (uint8 activations per tensor, int8 weights per output channel, 7 or 8 bits), and the
 * build's per-layer check: a layer with a planted outlier channel stays float32, the rest int8,
 * model.json says so, and the int8 build's rows stay within the bounds it recorded.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildFromCheckpoint } from '../../../src/builder/buildModel';
import { DataType, GraphBuilder } from '../../../src/onnx/onnxGraph';
import { Ops } from '../../../src/onnx/ops';
import { END_BOUNDS, LAYER_BOUND } from '../../../src/builder/visionInt8';
import { SeededRandom } from '../../../src/common/random';
import { Engine } from '../../../src/pipeline/engine/engine';
import { loadManifest } from '../../../src/format/modelManifest';
import { parseReduceMode } from '../../../src/shared/reduceMode';
import { scratchDir, tinyCheckpoint, TinyShape } from '../../helpers/checkpoints';
import { noisePng } from '../../helpers/images';

/** Round half to even, as onnxruntime's quantisation rounds. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Y = A W^T + b computed as the int8 path defines it, in float64. */
function quantisedReference(
  a: Float32Array,
  m: number,
  w: Float32Array,
  bias: Float32Array,
  n: number,
  k: number,
  bits: 7 | 8,
): Float64Array {
  let lo = 0;
  let hi = 0;
  for (const x of a) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const aScale = Math.fround((hi - lo) / 255);
  const zero = Math.min(255, Math.max(0, roundEven(-lo / aScale)));
  const aq = Array.from(a, (x) => Math.min(255, Math.max(0, roundEven(x / aScale) + zero)));
  const qmax = 2 ** (bits - 1) - 1;
  const y = new Float64Array(m * n);
  for (let j = 0; j < n; j++) {
    let maxAbs = 0;
    for (let i = 0; i < k; i++) maxAbs = Math.max(maxAbs, Math.abs(w[j * k + i]!));
    const wScale = maxAbs / qmax;
    const wq = Array.from({ length: k }, (_, i) => Math.max(-qmax, Math.min(qmax, Math.round(w[j * k + i]! / wScale))));
    for (let r = 0; r < m; r++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += (aq[r * k + i]! - zero) * wq[i]!;
      y[r * n + j] = acc * aScale * wScale + bias[j]!;
    }
  }
  return y;
}

describe('int8 linear layers (DynamicQuantizeMatMul)', () => {
  for (const bits of [8, 7] as const) {
    it(`${bits}-bit weights: the graph computes the quantised arithmetic, weights within +-${2 ** (bits - 1) - 1}`, async () => {
      const [m, k, n] = [37, 96, 24];
      const rng = new SeededRandom(bits);
      const a = rng.normals(m * k, 1);
      a[5] = 9; // a wide activation range, as a tower's hidden states have
      const w = rng.normals(n * k, 0.05);
      const bias = rng.normals(n, 0.1);
      const dir = scratchDir('int8');
      const g = new GraphBuilder('linear', join(dir, 'l.onnx.data'));
      const weights = {
        shape: (name: string) => (name.endsWith('weight') ? [n, k] : [n]),
        read: async (name: string) => (name.endsWith('weight') ? w : bias),
      };
      const ops = new Ops(g, weights as never, 'fp32', undefined, bits);
      const y = await ops.makeLinear('/l', 'l', g.input('a', DataType.FLOAT, [m, k]), k, n, { bias: true, format: 'int8' });
      ops.output('/out', y, 'y', [m, n]);
      await g.save(join(dir, 'l.onnx'));
      const model = onnx.ModelProto.decode(readFileSync(join(dir, 'l.onnx')));
      assert.deepEqual(
        model.graph!.node!.map((x) => x.opType),
        ['DynamicQuantizeMatMul', 'Identity'],
      );
      const session = await ort.InferenceSession.create(join(dir, 'l.onnx'));
      const out = (await session.run({ a: new ort.Tensor('float32', a, [m, k]) }))['y']!.data as Float32Array;
      await session.release();
      const ref = quantisedReference(a, m, w, bias, n, k, bits);
      // float32 accumulation and scale products: a few ulps of the largest value
      const largest = ref.reduce((x, v) => Math.max(x, Math.abs(v)), 0);
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(out[i]! - ref[i]!) <= 1e-5 * largest, `y[${i}] ${out[i]} vs ${ref[i]}`);
      // the stored weights themselves
      const init = model.graph!.initializer!.find((t) => t.name === 'l.weight.int8')!;
      assert.equal(init.dataType, DataType.INT8);
    });
  }
});

/**
 * One channel of layer 1's layer_norm2 scaled by 1000 and fc1's weights for it divided by 1000:
 * the float layer computes the same, but one activation scale per tensor can no longer hold the
 * other channels of fc1's input.
 */
async function checkpoint(shape: TinyShape, planted: boolean) {
  const width = (await tinyCheckpoint({ seed: 1 }, () => {}, shape)).config.vision.hiddenSize;
  const S = 1000;
  const override = (name: string, random: (n: string) => Float32Array): Float32Array | undefined => {
    const m = /encoder\.layers\.1\.(layer_norm2\.(weight|bias)|mlp\.fc1\.weight)$/.exec(name);
    if (!m) return undefined;
    const d = random(name).slice();
    if (m[1]!.startsWith('layer_norm2')) d[3]! *= S;
    else for (let r = 0; r < d.length / width; r++) d[r * width + 3]! /= S;
    return d;
  };
  return tinyCheckpoint({ seed: 23, ...(planted ? { override } : {}) }, () => {}, shape);
}

describe('int8 vision tower: checked layer by layer when the model is built', () => {
  for (const shape of ['tiny', 'tiny-onevision'] as const) {
    it(`${shape}: a planted outlier keeps its layer in float32, the rest int8; without it all int8; model.json records both`, async () => {
      for (const planted of [false, true]) {
        const ckpt = await checkpoint(shape, planted);
        const dir = join(scratchDir('model'), 'int8');
        await buildFromCheckpoint(ckpt.dir, { out: dir, dtype: 'int4' }); // int8 is the CPU build's default
        const v = (await loadManifest(dir)).vision;
        const layers = v.layerPrecision!.length;
        assert.equal(v.dtype, 'int8');
        assert.deepEqual(
          v.layerPrecision,
          Array.from({ length: layers }, (_, i) => (planted && i === 1 ? 'fp32' : 'int8')),
        );
        const r = v.verification!;
        assert.equal(r.passed, true);
        const [topk] = Object.entries(r.keptScore).filter(([mode]) => mode.startsWith('topk:'));
        assert.ok(topk![1] >= END_BOUNDS.keptScore && topk![1] <= 1, `attention kept under ${topk![0]}: ${topk![1]}`);
        assert.equal(r.layerBound, LAYER_BOUND);
        assert.equal(r.layerErrors.length, layers);
        assert.ok(r.images.some((f) => f.startsWith('media/calibration/')));
        if (planted) assert.ok(r.layerErrors[1]! > LAYER_BOUND, `planted layer error ${r.layerErrors[1]}`);
        // the int8 node count follows the layers chosen: 6 linear layers a whole layer, q and k only for CLIP's last
        const nodes = onnx.ModelProto.decode(readFileSync(join(dir, 'vision.onnx'))).graph!.node!;
        const int8Layers = new Set(nodes.filter((x) => x.opType === 'DynamicQuantizeMatMul').map((x) => /layers\.(\d+)/.exec(x.name!)![1]));
        assert.deepEqual(
          [...int8Layers].map(Number).sort(),
          v.layerPrecision!.flatMap((p, i) => (p === 'int8' ? [i] : [])),
        );
      }
    });
  }

  it('the int8 build reads an image within the recorded bounds of the float build', async () => {
    const ckpt = await checkpoint('tiny-onevision', true);
    const dirs = { int8: join(scratchDir('model'), 'a'), fp32: join(scratchDir('model'), 'b') };
    await buildFromCheckpoint(ckpt.dir, { out: dirs.int8, dtype: 'int4' });
    await buildFromCheckpoint(ckpt.dir, { out: dirs.fp32, dtype: 'int4', visionDtype: 'fp32' });
    const image = await noisePng(200, 150, 8);
    const [a, b] = await Promise.all([Engine.load(dirs.int8), Engine.load(dirs.fp32)]);
    try {
      const none = parseReduceMode('none');
      const [x, y] = [await a.encodeImage(image, none), await b.encodeImage(image, none)];
      const hidden = a.manifest.decoder.hiddenSize;
      let worst = 1;
      for (let r = 0; r < x.rows; r++) {
        let [ab, aa, bb] = [0, 0, 0];
        for (let i = r * hidden; i < (r + 1) * hidden; i++) {
          ab += x.embeds[i]! * y.embeds[i]!;
          aa += x.embeds[i]! ** 2;
          bb += y.embeds[i]! ** 2;
        }
        worst = Math.min(worst, ab / Math.sqrt(aa * bb));
      }
      assert.ok(worst >= END_BOUNDS.projectedCosineMin, `worst row cosine ${worst}`);
      assert.notDeepEqual(x.embeds, y.embeds, 'the int8 tower is quantised');
      console.log(`int8 vs float tower, projected rows: worst cosine ${worst}`);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});
