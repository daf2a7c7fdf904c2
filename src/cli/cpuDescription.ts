/** The CPU a benchmark ran on, for its report: model, logical CPUs and the vector extensions that matter here. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

/** Extensions onnxruntime's and llama.cpp's kernels choose by (AVX-512 VNNI makes int8 work much faster). */
const FLAGS = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_tile'];

export interface CpuDescription {
  readonly model: string;
  readonly logical: number;
  /** Those of FLAGS the CPU reports (Linux /proc/cpuinfo; empty elsewhere). */
  readonly flags: string[];
}

export function cpuDescription(): CpuDescription {
  return { model: cpus()[0]?.model.trim() ?? 'unknown CPU', logical: availableParallelism(), flags: cpuFlags() };
}

function cpuFlags(): string[] {
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
    const have = new Set(line.trim().split(/\s+/));
    return FLAGS.filter((f) => have.has(f));
  } catch {
    return [];
  }
}
