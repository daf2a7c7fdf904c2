/**
 * The vision tower quantised (MatMulNBits, 8 or 4 bits) against float32, on one image: how close
 * its outputs stay (cosine similarity of hidden, q and k), how many of PruMerge's kept patches
 * change, and the time per image. Shapes: tiny, demo (random weights at the demo's larger std, so
 * that attention is not flat) and LLaVA-1.5's CLIP ViT-L/14-336 with random weights.
 * Run: npm run bench:vision [-- --shapes tiny,demo,llava-1.5-7b --reps 3 --image FILE]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { DEMO_STD } from '../src/builder/demoModel';
import { llavaConfigFromJson } from '../src/builder/llavaConfig';
import { GraphBuilder } from '../src/builder/onnxGraph';
import { LinearFormat, Ops } from '../src/builder/ops';
import { shapeConfig } from '../src/builder/shapes';
import { familiesOf } from '../src/builder/llavaConfig';
import { SyntheticWeights } from '../src/builder/weights';
import { VISION_IO } from '../src/pipeline/runtime/graphNames';
import { preprocessImage } from '../src/pipeline/image/preprocess';
import { clipPreprocess } from '../src/pipeline/image/preprocessConfig';
import { reduceVisualTokens } from '../src/pipeline/reduce/prumerge';
import { parseReduceMode } from '../src/shared/reduceMode';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'tiny,demo,llava-1.5-7b' },
    reps: { type: 'string', default: '3' },
    image: { type: 'string', default: join(__dirname, '..', 'media', 'samples', 'pipeline-diagram.svg') },
  },
});
const FORMATS: readonly LinearFormat[] = ['float', 'int8', 'int4'];

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Kept patches of `b` that are not kept in `a`, out of a's count. */
function keptChanged(a: Int32Array, b: Int32Array): string {
  const inA = new Set(a);
  return `${Array.from(b).filter((i) => !inA.has(i)).length} of ${a.length}`;
}

async function main(): Promise<void> {
  const reps = Number(values.reps);
  console.log(`vision tower, quantised vs float32: ${values.image}, median of ${reps} runs after a warm-up`);
  console.log(
    'shape          format  file MB  ms/image  speed-up  cos hidden  cos q     cos k     prumerge kept changed  prumerge+ kept changed',
  );
  for (const shape of values.shapes.split(',')) {
    const config = llavaConfigFromJson(shapeConfig(shape));
    const std = shape === 'demo' ? DEMO_STD : undefined;
    const pre = await preprocessImage(values.image, { config: clipPreprocess(config.vision.imageSize) });
    const size = config.vision.imageSize;
    const feeds = { [VISION_IO.pixels]: new ort.Tensor('float32', pre.pixelValues, [1, 3, size, size]) };
    const dir = mkdtempSync(join(tmpdir(), 'prumerge-vision-quant-'));
    try {
      let base: { taps: Record<string, Float32Array>; ms: number; kept: Int32Array[] } | undefined;
      for (const format of FORMATS) {
        const g = new GraphBuilder('vision', join(dir, `${format}.onnx.data`));
        await familiesOf(config).tower.makeGraph(new Ops(g, new SyntheticWeights(config, 0, std)), config, format);
        await g.save(join(dir, `${format}.onnx`));
        const session = await ort.InferenceSession.create(join(dir, `${format}.onnx`), { graphOptimizationLevel: 'all' });
        let out = await session.run(feeds);
        const times: number[] = [];
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          out = await session.run(feeds);
          times.push(performance.now() - t0);
        }
        await session.release();
        const ms = times.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
        const taps = Object.fromEntries([VISION_IO.hidden, VISION_IO.q, VISION_IO.k].map((n) => [n, out[n]!.data as Float32Array]));
        const vt = {
          tokens: (size / config.vision.patchSize) ** 2 + 1,
          width: config.vision.hiddenSize,
          hidden: taps[VISION_IO.hidden]!,
          q: taps[VISION_IO.q]!,
          k: taps[VISION_IO.k]!,
        };
        const kept = ['prumerge', 'prumerge+'].map((m) => reduceVisualTokens(vt, parseReduceMode(m)).kept);
        base ??= { taps, ms, kept };
        const mb = (g.bytesWritten / 2 ** 20).toFixed(1);
        const cos = [VISION_IO.hidden, VISION_IO.q, VISION_IO.k].map((n) => cosine(base!.taps[n]!, taps[n]!).toFixed(6));
        console.log(
          [
            shape.padEnd(14),
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
