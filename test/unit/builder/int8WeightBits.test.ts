import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { int8WeightBits } from '../../../src/builder/int8WeightBits';
import { quantizePerChannel } from '../../../src/onnx/quantize';

const cpu = (flags: string) => () => `processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu ${flags} sse2\n\nprocessor\t: 1\n`;

describe('int8 weight bits for this machine', () => {
  it('7 bits on x86 without VNNI (AVX2, AVX-512 alone), where int16 pair sums saturate; 8 with VNNI and on Arm', () => {
    assert.equal(int8WeightBits('x64', cpu('avx avx2 fma')), 7);
    assert.equal(int8WeightBits('x64', cpu('avx2 avx512f avx512bw')), 7);
    assert.equal(int8WeightBits('x64', cpu('avx2 avx512f avx512_vnni')), 8);
    assert.equal(int8WeightBits('x64', cpu('avx2 avx_vnni')), 8);
    assert.equal(
      int8WeightBits('x64', () => ''),
      7,
    );
    assert.equal(
      int8WeightBits('arm64', () => ''),
      8,
    );
  });

  it('7-bit weights cannot overflow an int16 sum of two u8 x s8 products; 8-bit ones can', () => {
    const pair = (w: number) => 2 * 255 * w;
    const w = Float32Array.from([-1, 0.5, 0.25, 1]);
    const q7 = quantizePerChannel(w, 1, 4, 7);
    const q8 = quantizePerChannel(w, 1, 4, 8);
    assert.deepEqual(Array.from(q7.data), [-63, 32, 16, 63]);
    assert.deepEqual(Array.from(q8.data), [-127, 64, 32, 127]);
    assert.ok(pair(Math.max(...Array.from(q7.data, Math.abs))) <= 32767);
    assert.ok(pair(Math.max(...Array.from(q8.data, Math.abs))) > 32767);
    assert.ok(Math.abs(q7.scales[0]! - 1 / 63) < 1e-9 && Math.abs(q8.scales[0]! - 1 / 127) < 1e-9);
  });
});
