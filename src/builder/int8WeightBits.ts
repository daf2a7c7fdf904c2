/**
 * How many bits the int8 vision tower's weights may use on this machine. onnxruntime's u8 x s8
 * kernel on x86 without VNNI (AVX2, AVX-512 without VNNI) adds pairs of products in int16, which
 * saturates with full-range weights; 7-bit weights cannot overflow it (docs/vision-int8.md).
 * VNNI sums in int32, and Arm's dot products do not saturate, so those take all 8 bits.
 */
import { readFileSync } from 'node:fs';
import type { Int8WeightBits } from '../onnx/quantize';

export function int8WeightBits(arch: string = process.arch, cpuinfo: () => string = readCpuinfo): Int8WeightBits {
  if (arch === 'arm64') return 8;
  if (arch !== 'x64') return 7;
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo())?.[1]?.trim().split(/\s+/) ?? [];
  return flags.includes('avx512_vnni') || flags.includes('avx_vnni') ? 8 : 7;
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return ''; // not Linux: no flags to read, so the weights that never saturate
  }
}
