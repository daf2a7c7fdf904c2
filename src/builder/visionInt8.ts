/**
 * The int8 vision tower, checked on the weights being built (docs/vision-int8.md). Each encoder
 * layer is tried in int8 on its own, fed the float tower's input for that layer on a small set of
 * calibration images; a layer whose output moves too far (an outlier channel that one activation
 * scale per tensor cannot hold, say) stays float32. The tower built that way is then compared with
 * the float one where it matters: the projected rows the language model reads, and the patches
 * PruMerge and top-k keep. Where that end check fails, the whole tower is built in float32.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packagePath } from '../common/packagePath';
import { LayerFormat } from '../families/family';
import { layerInputName, makeEncoderLayer, makeQk } from '../families/vision/encoderLayer';
import { patchFeatures, towerTaps } from '../pipeline/reduce/visionTaps';
import { preprocessImage } from '../pipeline/image/preprocess';
import type { PreprocessConfig } from '../format/preprocessConfig';
import { reduceVisualTokens } from '../pipeline/reduce/prumerge';
import type { TowerTaps } from '../pipeline/reduce/visionTaps';
import { PROJECTOR_IO, VISION_IO } from '../format/graphNames';
import type { LayerPrecision, VisionVerification } from '../format/modelManifest';
import { resolveThreads } from '../pipeline/runtime/threads';
import { parseReduceMode } from '../shared/reduceMode';
import { familiesOf, LlavaConfig } from '../families/llavaConfig';
import { DataType, GraphBuilder } from '../onnx/onnxGraph';
import { Ops } from '../onnx/ops';
import { Int8WeightBits } from '../onnx/quantize';
import { VISION, WeightSource } from '../checkpoint/weights';

/**
 * A layer stays int8 while its output, fed the float tower's input, is within this share of the
 * float layer's own change to its input (for a layer the graph reads only q and k of: of q and k).
 * Ordinary layers measure 0.5-3% (docs/vision-int8.md); an activation outlier 100x its row's
 * other channels measures over 50%.
 */
export const LAYER_BOUND = 0.1;

/**
 * What the int8 tower must keep of the float one, over the calibration images (docs/vision-int8.md):
 * the projected rows' cosine, and under a fixed budget (top-k) the share of the float tower's
 * attention that the patches the int8 tower keeps carry. The same patches kept, and PruMerge's
 * figures, are recorded but not bounded: where scores are nearly tied (random weights' attention
 * is), which of them is kept, and how many pass PruMerge's outlier threshold, is noise.
 */
export const END_BOUNDS = { projectedCosineMin: 0.98, projectedCosineMean: 0.995, keptScore: 0.95 } as const;

/** The calibration set: the samples, and document, code, UI and chart pictures (media/calibration). */
export async function calibrationImages(): Promise<string[]> {
  const dirs = [packagePath('media', 'samples'), packagePath('media', 'calibration')];
  const files = await Promise.all(dirs.map(async (d) => (await readdir(d)).sort().map((f) => join(d, f))));
  return files.flat().filter((f) => /\.(png|svg|jpe?g)$/i.test(f));
}

export interface Int8Plan {
  readonly bits: Int8WeightBits;
  readonly precision: readonly LayerPrecision[];
  readonly layerErrors: readonly number[];
  readonly images: readonly string[];
  readonly format: LayerFormat;
  /** The float tower's outputs on each calibration crop, for the end check. */
  readonly reference: readonly TowerTaps[];
  readonly crops: readonly Float32Array[];
}

interface CheckContext {
  readonly dir: string;
  readonly config: LlavaConfig;
  readonly weights: WeightSource;
  readonly bits: Int8WeightBits;
}

/** Writes one graph into the check's scratch folder and opens it on the CPU. */
async function openGraph(c: CheckContext, name: string, make: (ops: Ops) => Promise<void>): Promise<ort.InferenceSession> {
  const path = join(c.dir, `${name}.onnx`);
  const g = new GraphBuilder(name, `${path}.data`);
  await make(new Ops(g, c.weights, 'fp32', undefined, c.bits));
  await g.save(path);
  return ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', intraOpNumThreads: resolveThreads(undefined) });
}

async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<(name: string) => Float32Array> {
  const out = await session.run(feeds);
  return (name) => out[name]!.data as Float32Array;
}

function grid(config: LlavaConfig): number {
  return Math.floor(config.vision.imageSize / config.vision.patchSize);
}

function visionFacts(config: LlavaConfig): { score: 'cls' | 'received'; grid: number; hiddenSize: number } {
  return { score: familiesOf(config).tower.score, grid: grid(config), hiddenSize: config.vision.hiddenSize };
}

/** ||a - b|| / ||ref||. */
function relative(a: Float32Array, b: Float32Array, ref: (i: number) => number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += ref(i) ** 2;
  }
  return Math.sqrt(num / (den || 1));
}

/** Tries each encoder layer in int8 on the calibration crops; chooses int8 or float32 for each. */
export async function planInt8Tower(args: {
  readonly scratch: string;
  readonly config: LlavaConfig;
  readonly weights: WeightSource;
  readonly preprocess: PreprocessConfig;
  readonly bits: Int8WeightBits;
}): Promise<Int8Plan> {
  const { config } = args;
  const { tower } = familiesOf(config);
  const v = config.vision;
  const images = await calibrationImages();
  const size = v.imageSize;
  const crops = await Promise.all(images.map(async (f) => (await preprocessImage(f, { config: args.preprocess })).pixelValues));
  const dir = await mkdtemp(join(args.scratch, 'int8-check-'));
  const c: CheckContext = { dir, config, weights: args.weights, bits: args.bits };
  try {
    const float = await openGraph(c, 'float', (ops) => {
      ops.tapLayerInputs = true;
      return tower.makeGraph(ops, config, () => 'float');
    });
    const last = tower.scoreLayer(config);
    const inputs: Float32Array[][] = [];
    const reference: TowerTaps[] = [];
    for (const crop of crops) {
      const out = await run(float, { [VISION_IO.pixels]: new ort.Tensor('float32', crop, [1, 3, size, size]) });
      inputs.push(Array.from({ length: last + 1 }, (_, i) => out(layerInputName(i))));
      reference.push(towerTaps(visionFacts(config), out));
    }
    await float.release();

    const tokens = inputs[0]![0]!.length / v.hiddenSize;
    const layerErrors: number[] = [];
    for (let i = 0; i <= last; i++) {
      // the graph's last layer is whole where the tower reads its output (SigLIP), q and k only otherwise (CLIP)
      const whole = i < last || tower.reads(`${VISION}.encoder.layers.${i}.mlp.fc1.weight`, config);
      const layer = (format: 'float' | 'int8') =>
        openGraph(c, `layer${i}-${format}`, async (ops) => {
          const h = ops.g.input('h', DataType.FLOAT, [1, tokens, v.hiddenSize]);
          const taps = await makeQk(ops, v, i, h, format);
          const dims = [1, tokens, v.hiddenSize];
          ops.output('/check/q', taps.q, 'q', dims);
          ops.output('/check/k', taps.k, 'k', dims);
          if (whole) ops.output('/check/y', await makeEncoderLayer(ops, v, i, h, format, taps), 'y', dims);
        });
      const [f, q] = [await layer('float'), await layer('int8')];
      let worst = 0;
      for (const x of inputs) {
        const feeds = { h: new ort.Tensor('float32', x[i]!, [1, tokens, v.hiddenSize]) };
        const [a, b] = [await run(f, feeds), await run(q, feeds)];
        const error = whole
          ? relative(b('y'), a('y'), (j) => a('y')[j]! - x[i]![j]!)
          : Math.max(
              relative(b('q'), a('q'), (j) => a('q')[j]!),
              relative(b('k'), a('k'), (j) => a('k')[j]!),
            );
        worst = Math.max(worst, error);
      }
      await Promise.all([f.release(), q.release()]);
      layerErrors.push(worst);
    }
    const precision = layerErrors.map((e): LayerPrecision => (e <= LAYER_BOUND ? 'int8' : 'fp32'));
    return {
      bits: args.bits,
      precision,
      layerErrors,
      images,
      format: (i) => (precision[i] === 'int8' ? 'int8' : 'float'),
      reference,
      crops,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The built tower (vision.onnx) against the float one: projected rows and kept patches on the calibration crops. */
export async function verifyInt8Tower(
  plan: Int8Plan,
  config: LlavaConfig,
  visionPath: string,
  projectorPath: string,
): Promise<VisionVerification> {
  const options = { graphOptimizationLevel: 'all' as const, intraOpNumThreads: resolveThreads(undefined) };
  const vision = await ort.InferenceSession.create(visionPath, options);
  const projector = await ort.InferenceSession.create(projectorPath, options);
  const size = config.vision.imageSize;
  const width = config.vision.hiddenSize;
  const project = async (taps: TowerTaps): Promise<Float32Array> => {
    const features = patchFeatures(taps);
    const out = await projector.run({ [PROJECTOR_IO.features]: new ort.Tensor('float32', features, [features.length / width, width]) });
    return out[PROJECTOR_IO.embeds]!.data as Float32Array;
  };
  const patches = grid(config) ** 2;
  const k = Math.min(32, Math.floor(patches / 4));
  const modes = { prumerge: parseReduceMode('prumerge'), topk: parseReduceMode(`topk:${k}`) };
  let cosMin = 1;
  let cosSum = 0;
  let rows = 0;
  const overlap = { prumerge: 1, topk: 1 };
  const score = { prumerge: 1, topk: 1 };
  try {
    for (let n = 0; n < plan.crops.length; n++) {
      const out = await vision.run({ [VISION_IO.pixels]: new ort.Tensor('float32', plan.crops[n]!, [1, 3, size, size]) });
      const int8 = towerTaps(visionFacts(config), (name) => out[name]!.data as Float32Array);
      const float = plan.reference[n]!;
      const [a, b] = [await project(float), await project(int8)];
      const hidden = a.length / patches;
      for (let r = 0; r < patches; r++) {
        const c = cosine(a.subarray(r * hidden, (r + 1) * hidden), b.subarray(r * hidden, (r + 1) * hidden));
        cosMin = Math.min(cosMin, c);
        cosSum += c;
        rows++;
      }
      for (const key of ['prumerge', 'topk'] as const) {
        const reference = reduceVisualTokens(float, modes[key]);
        const kept = new Set(reference.kept);
        const chosen = Array.from(reduceVisualTokens(int8, modes[key]).kept);
        overlap[key] = Math.min(overlap[key], chosen.filter((p) => kept.has(p)).length / kept.size);
        // the float tower's attention on the patches each tower keeps
        const mass = (patches: Iterable<number>): number => Array.from(patches).reduce((n, p) => n + reference.attention[p]!, 0);
        score[key] = Math.min(score[key], Math.min(1, mass(chosen) / (mass(kept) || 1)));
      }
    }
  } finally {
    await Promise.all([vision.release(), projector.release()]);
  }
  const projectedCosine = { min: round(cosMin), mean: round(cosSum / rows) };
  const keptOverlap = { prumerge: round(overlap.prumerge), [`topk:${k}`]: round(overlap.topk) };
  const keptScore = { prumerge: round(score.prumerge), [`topk:${k}`]: round(score.topk) };
  const passed =
    projectedCosine.min >= END_BOUNDS.projectedCosineMin &&
    projectedCosine.mean >= END_BOUNDS.projectedCosineMean &&
    score.topk >= END_BOUNDS.keptScore;
  return {
    images: plan.images.map((f) => f.slice(packagePath().length + 1)),
    weightBits: plan.bits,
    layerBound: LAYER_BOUND,
    layerErrors: plan.layerErrors.map(round),
    projectedCosine,
    keptOverlap,
    keptScore,
    passed,
  };
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb || 1);
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}
