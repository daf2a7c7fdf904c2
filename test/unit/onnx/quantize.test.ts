import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { attr, DataType, GraphBuilder, MS_DOMAIN } from '../../../src/onnx/onnxGraph';
import { dequantize, quantize } from '../../../src/onnx/quantize';
import { SeededRandom } from '../../../src/common/random';
import { scratchDir } from '../../helpers/checkpoints';

describe('4-bit block quantisation (MatMulNBits layout)', () => {
  it('maps a block spanning [-1, 2] onto 0..15 with scale 0.2 and zero point 5', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => -1 + (3 * i) / 31);
    const q = quantize(w, 1, 32, 4, 32);
    assert.ok(Math.abs(q.scales[0]! - 0.2) < 1e-7);
    assert.equal(q.zeroPoints[0]! & 15, 5);
    assert.equal(q.packed[0]! & 15, 0); // -1 -> 0
    assert.equal(q.packed[15]! >> 4, 15); // 2 -> 15
    const back = dequantize(q);
    assert.ok(Math.abs(back[0]! + 1) < 1e-6 && Math.abs(back[31]! - 2) < 1e-6);
  });

  it('keeps every weight within half a step, zero exactly, across ragged K', () => {
    const rng = new SeededRandom(2);
    const n = 7;
    const k = 100; // 4 blocks of 32, the last one padded
    const w = rng.normals(n * k, 0.05);
    w[3] = 0;
    const q = quantize(w, n, k, 4, 32);
    assert.equal(q.blocks, 4);
    const back = dequantize(q);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < k; i++) {
        const scale = q.scales[r * q.blocks + Math.floor(i / 32)]!;
        assert.ok(Math.abs(back[r * k + i]! - w[r * k + i]!) <= scale / 2 + 1e-7, `w[${r}][${i}]`);
      }
    }
    assert.equal(back[3], 0);
  });

  it('8 bits: maps a block spanning [-1, 2] onto 0..255 with scale 3/255 and zero point 85', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => -1 + (3 * i) / 31);
    const q = quantize(w, 1, 32, 8, 32);
    assert.ok(Math.abs(q.scales[0]! - 3 / 255) < 1e-7);
    assert.equal(q.zeroPoints[0], 85); // round(1 / (3 / 255))
    assert.equal(q.packed[0], 0); // -1 -> 0
    assert.equal(q.packed[31], 255); // 2 -> 255
    assert.equal(q.packed.length, 32); // one byte a weight
    const back = dequantize(q);
    assert.ok(Math.abs(back[0]! + 1) < 1e-6 && Math.abs(back[31]! - 2) < 1e-6);
  });

  // [bits, accuracy_level, seed, block size, K]: K = 200 leaves the last 128-block ragged
  for (const [bits, level, seed, block, k] of [
    [4, 0, 3, 32, 96],
    [8, 0, 4, 32, 96],
    [8, 1, 4, 32, 96],
    [4, 1, 4, 32, 96],
    [4, 1, 5, 64, 192],
    [4, 1, 6, 128, 200],
    [4, 0, 7, 128, 256],
  ] as const) {
    it(`${bits} bits in blocks of ${block} is read by onnxruntime as dequantize reads it (accuracy_level ${level})`, async () => {
      const rng = new SeededRandom(seed);
      const [m, n] = [5, 12];
      const w = rng.normals(n * k, 0.1);
      const a = rng.normals(m * k);
      const q = quantize(w, n, k, bits, block);
      assert.equal(q.blocks, Math.ceil(k / block));
      const dir = scratchDir('nbits');
      const g = new GraphBuilder('nbits', join(dir, 'm.onnx.data'));
      const x = g.input('a', DataType.FLOAT, [m, k]);
      const b = g.initializer('b', q.packed, [n, q.blocks, (block * bits) / 8], DataType.UINT8);
      const s = g.initializer('s', q.scales, [n * q.blocks], DataType.FLOAT);
      const z = g.initializer('z', q.zeroPoints, [q.zeroPoints.length], DataType.UINT8);
      g.node(
        'MatMulNBits',
        'mm',
        [x, b, s, z],
        { K: attr.i(k), N: attr.i(n), bits: attr.i(bits), block_size: attr.i(block), accuracy_level: attr.i(level) },
        { domain: MS_DOMAIN, outputs: ['y'] },
      );
      g.output('y', DataType.FLOAT, [m, n]);
      await g.save(join(dir, 'm.onnx'));
      const session = await ort.InferenceSession.create(join(dir, 'm.onnx'));
      const y = (await session.run({ a: new ort.Tensor('float32', a, [m, k]) }))['y']!.data as Float32Array;
      const wq = dequantize(q);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let ref = 0;
          for (let t = 0; t < k; t++) ref += a[i * k + t]! * wq[j * k + t]!;
          assert.ok(Math.abs(y[i * n + j]! - ref) < 1e-4, `y[${i}][${j}] = ${y[i * n + j]} vs ${ref}`);
        }
      }
    });
  }
});
