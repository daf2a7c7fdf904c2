/**
 * Times the token reduction at LLaVA-1.5's size (N = 576, C = 1024) on synthetic taps, and the
 * selections of docs/reductions.md on one crop.
 * Run: npm run bench:reduce [-- --reps 30]
 */
import { parseArgs } from 'node:util';
import { MergeWorkspace } from '../src/pipeline/reduce/mergeKernels';
import { reduceVisualTokens } from '../src/pipeline/reduce/prumerge';
import { parseReduceMode } from '../src/shared/reduceMode';
import { syntheticTaps } from '../src/pipeline/reduce/syntheticTaps';
import { cdpruner, divprune } from '../src/pipeline/reduce/diversity';
import { selectVisualTokens, type SelectionMode } from '../src/pipeline/reduce/selectTokens';
import { SeededRandom } from '../src/common/random';

/** The median of `runs` timings of `f` after `warm` untimed runs, ms. */
function medianMs(f: () => void, warm: number, runs: number): number {
  for (let i = 0; i < warm; i++) f();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    f();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '30' }, width: { type: 'string', default: '1024' } },
});
const reps = Number(values.reps);
const taps = syntheticTaps({ grid: 24, width: Number(values.width), seed: 1 });

console.log(`N = ${taps.tokens - 1}, C = ${taps.width}, ${reps} repetitions after 5 warm-up runs, one thread`);
console.log('mode        kept  rows   median ms   min ms');
for (const text of ['none', 'prumerge', 'prumerge+', 'topk:32', 'topk:144']) {
  const mode = parseReduceMode(text);
  for (let i = 0; i < 5; i++) reduceVisualTokens(taps, mode);
  const times: number[] = [];
  let kept = 0;
  let rows = 0;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const r = reduceVisualTokens(taps, mode);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    kept = r.kept.length;
    rows = r.rows;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(
    `${text.padEnd(10)} ${String(kept).padStart(5)} ${String(rows).padStart(5)} ${median.toFixed(2).padStart(11)} ${times[0]!.toFixed(2).padStart(8)}`,
  );
}

// The merge step's cosine similarities: the WebAssembly SIMD kernel against the same arithmetic
// as a straightforward JavaScript loop (the kernel's reason to exist), 144 kept rows x 576 keys x C.
{
  const n = taps.tokens - 1;
  const width = taps.width;
  const keys = taps.k.subarray(width);
  const rows = Int32Array.from({ length: 144 }, (_, i) => i * 4);
  const cosine = new MergeWorkspace(keys, taps.hidden.subarray(width), n, width);
  const unit = new Float32Array(keys.length);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let c = 0; c < width; c++) ss += keys[r * width + c]! ** 2;
    for (let c = 0; c < width; c++) unit[r * width + c] = keys[r * width + c]! / Math.sqrt(ss);
  }
  const sims = new Float64Array(n);
  const plainJs = (): void => {
    for (const i of rows) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < width; c++) s += unit[i * width + c]! * unit[j * width + c]!;
        sims[j] = s;
      }
    }
  };
  const wasm = (): void => {
    for (let b = 0; b < rows.length; b += 4) cosine.compare(rows[b]!, rows[b + 1]!, rows[b + 2]!, rows[b + 3]!);
  };
  const time = (f: () => void): number => medianMs(f, 3, 10);
  const js = time(plainJs);
  const simd = time(wasm);
  console.log(
    `\ncosine similarities, 144 x ${n} x ${width}: a JavaScript loop ${js.toFixed(2)} ms, WebAssembly SIMD ${simd.toFixed(2)} ms: ${(js / simd).toFixed(1)}x`,
  );
}

// The selections (docs/reductions.md) on one crop: VisPruner, random and pooling on the taps
// above; CDPruner and DivPrune on projector rows of the two shapes that matter, LLaVA-1.5-7B
// (576 x 4096) and LLaVA-OneVision-0.5B (729 x 896), random but fixed. Budget 32 per crop.
{
  const time = (f: () => void): number => medianMs(f, 1, 5);
  console.log('\nselection on one crop      median ms (of 5)');
  for (const text of ['vispruner:32', 'random:32', 'pool:2']) {
    const mode = parseReduceMode(text) as SelectionMode;
    console.log(
      `${text.padEnd(24)} ${time(() => selectVisualTokens(taps, mode, 24))
        .toFixed(1)
        .padStart(10)}`,
    );
  }
  const rng = new SeededRandom(5);
  for (const [n, d] of [
    [576, 4096],
    [729, 896],
  ] as const) {
    const rows = rng.normals(n * d);
    const r = new Float64Array(n).map(() => rng.uniform());
    console.log(
      `cdpruner:32 (${n} x ${d})`.padEnd(24),
      time(() => cdpruner(rows, n, d, r, 32))
        .toFixed(1)
        .padStart(10),
    );
    console.log(
      `divprune:32 (${n} x ${d})`.padEnd(24),
      time(() => divprune(rows, n, d, 32))
        .toFixed(1)
        .padStart(10),
    );
  }
}
