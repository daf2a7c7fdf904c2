/**
 * The vision tower quantised (int8: DynamicQuantizeMatMul, int4: MatMulNBits) against float32, on
 * one image, in one run: how close its outputs stay (cosine similarity of hidden and k), how many
 * of PruMerge's kept patches change, and the time per crop. Shapes: tiny, demo (random weights at
 * the demo's larger std, so that attention is not flat), LLaVA-1.5's CLIP ViT-L/14-336 and
 * LLaVA-OneVision's SigLIP-so400m, with random weights, every layer in the format named.
 * Run: npm run bench:vision [-- --shapes llava-1.5-7b,llava-onevision-0.5b --reps 3 --image FILE --bits 7|8]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { DEMO_STD } from '../src/builder/demoModel';
import { llavaConfigFromJson } from '../src/families/llavaConfig';
import { GraphBuilder } from '../src/onnx/onnxGraph';
import { LinearFormat, Ops } from '../src/onnx/ops';
import { shapeConfig } from '../src/builder/shapes';
import { familiesOf } from '../src/families/llavaConfig';
import { everyLayer } from '../src/families/family';
import { SyntheticWeights } from '../src/builder/syntheticWeights';
import { VISION_IO } from '../src/format/graphNames';
import { towerTaps } from '../src/pipeline/reduce/visionTaps';
import { resolveThreads } from '../src/pipeline/runtime/threads';
import { int8WeightBits } from '../src/builder/int8WeightBits';
import { cosine } from '../src/builder/visionInt8';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { preprocessImage } from '../src/pipeline/image/preprocess';
import { reduceVisualTokens } from '../src/pipeline/reduce/prumerge';
import { parseReduceMode } from '../src/shared/reduceMode';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'llava-1.5-7b,llava-onevision-0.5b' },
    reps: { type: 'string', default: '3' },
    image: { type: 'string', default: join(__dirname, '..', 'media', 'samples', 'pipeline-diagram.svg') },
    // 7 shows the accuracy an AVX2 CPU gets (its kernel would saturate 8-bit weights) on any machine
    bits: { type: 'string' },
  },
});
const FORMATS: readonly LinearFormat[] = ['float', 'int8', 'int4'];

/** Kept patches of `b` that are not kept in `a`, out of a's count. */
function keptChanged(a: Int32Array, b: Int32Array): string {
  const inA = new Set(a);
  return `${Array.from(b).filter((i) => !inA.has(i)).length} of ${a.length}`;
}

/** The vector extensions that decide onnxruntime's kernels. */
function cpuFlags(): string {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return 'flags unknown';
  }
  const flags = /^flags\s*:(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
  return flags.filter((f) => /^(avx|fma|amx)/.test(f)).join(' ') || 'no AVX';
}

async function main(): Promise<void> {
  const reps = Number(values.reps);
  console.log(`vision tower, quantised vs float32: ${values.image}, median of ${reps} runs after a warm-up`);
  const bits = values.bits === '7' || values.bits === '8' ? (Number(values.bits) as 7 | 8) : int8WeightBits();
  console.log(`${cpus()[0]?.model}: ${cpuFlags()}; ${resolveThreads(undefined)} threads (the default); int8 weights ${bits}-bit`);
  console.log(
    'shape                 format  file MB  ms/crop  speed-up  cos hidden  cos q|recv  cos k     prumerge kept changed  prumerge+ kept changed',
  );
  for (const shape of values.shapes.split(',')) {
    const config = llavaConfigFromJson(shapeConfig(shape));
    const std = shape === 'demo' ? DEMO_STD : undefined;
    const { tower } = familiesOf(config);
    const pre = await preprocessImage(values.image, { config: tower.defaultPreprocess(config.vision.imageSize) });
    const size = config.vision.imageSize;
    const feeds = { [VISION_IO.pixels]: new ort.Tensor('float32', pre.pixelValues, [1, 3, size, size]) };
    const dir = mkdtempSync(join(tmpdir(), 'prumerge-vision-quant-'));
    try {
      let base: { taps: Record<'hidden' | 'k' | 'score', Float32Array>; ms: number; kept: Int32Array[] } | undefined;
      for (const format of FORMATS) {
        const g = new GraphBuilder('vision', join(dir, `${format}.onnx.data`));
        const ops = new Ops(g, new SyntheticWeights(config, 0, std), 'fp32', undefined, bits);
        await tower.makeGraph(ops, config, everyLayer(format));
        await g.save(join(dir, `${format}.onnx`));
        const session = await ort.InferenceSession.create(join(dir, `${format}.onnx`), {
          graphOptimizationLevel: 'all',
          intraOpNumThreads: resolveThreads(undefined),
        });
        let out = await session.run(feeds);
        const times: number[] = [];
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          out = await session.run(feeds);
          times.push(performance.now() - t0);
        }
        await session.release();
        const ms = times.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
        const grid = Math.floor(size / config.vision.patchSize);
        const vt = towerTaps({ score: tower.score, grid, hiddenSize: config.vision.hiddenSize }, (n) => out[n]!.data as Float32Array);
        const taps = { hidden: vt.hidden, k: vt.k, score: 'q' in vt ? vt.q : vt.received };
        const kept = ['prumerge', 'prumerge+'].map((m) => reduceVisualTokens(vt, parseReduceMode(m)).kept);
        base ??= { taps, ms, kept };
        const mb = (g.bytesWritten / 2 ** 20).toFixed(1);
        const cos = (['hidden', 'score', 'k'] as const).map((n) => cosine(base!.taps[n], taps[n]).toFixed(6));
        console.log(
          [
            shape.padEnd(21),
            (format === 'float' ? 'fp32' : format).padEnd(6),
            mb.padStart(7),
            ms.toFixed(1).padStart(9),
            `${(base.ms / ms).toFixed(2)}x`.padStart(9),
            ...cos.map((c) => c.padStart(9)),
            keptChanged(base.kept[0]!, kept[0]!).padStart(22),
            keptChanged(base.kept[1]!, kept[1]!).padStart(23),
          ].join('  '),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

void main();
