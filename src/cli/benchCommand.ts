/**
 * `prumerge bench`: the headline figure. In one run, on one image and one question, the time to
 * first token and the decode speed with all visual tokens and with each reduction: warm-up first,
 * a fixed number of generated tokens, several repetitions, medians, and the ratios.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSynthetic, DEFAULT_BLOCK_SIZE, defaultKvDtype, defaultVisionDtype } from '../builder/buildModel';
import { DEFAULT_VISION_CACHE_BYTES } from '../pipeline/engine/visionCache';
import { packagePath } from '../common/packagePath';
import { SHAPES } from '../builder/shapes';
import { AskResult } from '../shared/results';
import type { AskHooks } from '../pipeline/engine/stages';
import { Engine } from '../pipeline/engine/engine';
import { KvCacheMode } from '../pipeline/engine/request';
import { WeightDtype } from '../format/modelManifest';
import { Detail, formatReduceMode, parseDetail, parseReduceMode } from '../shared/reduceMode';
import { CliError } from './cliError';
import { wholeNumber, writeOut } from './io';
import { executionProvider, MODEL_OPTIONS, modelDir, RANDOM_WEIGHTS_NOTICE, threadCount } from './modelOption';
import { cpuDescription } from './cpuDescription';
import { formatBytes } from '../common/formatBytes';
import { benchContext, ContextRun, contextTable, median } from './contextBench';
import { benchFollowUps, FollowUpRun, followUpLine } from './followUpBench';
import { ProgressBar } from './progressBar';

export const BENCH_MODES = ['none', 'prumerge', 'prumerge+', 'topk:32'] as const;
const QUESTION = 'What is shown in this image? Describe it in detail.';

export const BENCH_USAGE = `usage: prumerge bench [--model DIR | --shape NAME [--dtype int4|fp32] [--vision-dtype int8|fp32]] [--image IMAGE] [--reps N] [--tokens N] [--context]
                      [--detail auto|medium|low] [--reduce LIST] [--kv-cache in-place|growing] [--threads N] [--json]

Times the first token and decoding with ${BENCH_MODES.join(', ')} (or none and the --reduce LIST, separated by commas) on the same image and
question: one warm-up, then --reps repetitions (default 3) of --tokens generated tokens (default
16, end-of-sequence ignored); medians and the ratios none / reduction. --shape builds synthetic
weights of that shape once (cached under ~/.cache/prumerge-vision). Shapes: ${Object.keys(SHAPES).join(', ')}.
topk:32 keeps the paper's average count on LLaVA-1.5, a figure that does not hinge on whatever
attention random weights happen to have. --context instead times decoding after prompts of about
70, 600 and 2400 positions (as far as the model's context allows), to show how decoding slows
with the context. --kv-cache growing holds the KV cache as each decoder run returns it whole,
instead of in fixed buffers each run appends its positions to (in-place: the CPU's default), for
comparison. --detail low reads the image as one padded crop (LLaVA-OneVision only). --threads sets onnxruntime's threads per graph (default 0: one per physical core, what
users get). The report names the CPU, its vector extensions and the threads used. Every mode reads
the image afresh (the vision cache is off for them); two last rows ask with prumerge 10 s after the
image started being read (as the chat does on attach), and about the same image again in a new
conversation, with the cache on; the last row times a follow-up in our chat and in VS Code's
chat (the whole conversation sent again). --vision-dtype builds the synthetic tower in int8 (the default
for int4 builds) or float32.`;

interface ModeRun {
  visualTokens: number;
  ttftMs: number;
  decodeTokensPerSecond: number;
  peakRssMb: number;
  /** Positions in the prompt: visual tokens, template and question. */
  promptTokens: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  visionMs: number;
  /** The reduction, and the projector (the selections that read its rows run it on every patch first). */
  reduceMs: number;
  projectorMs: number;
  /** Images the vision tower ran on: 1, or LLaVA-NeXT's overview and tiles. */
  subImages: number;
  visionMsPerSubImage: number;
}

/** prumerge asked again about the same image in a new conversation, the vision cache on. */
interface AgainRun {
  ttftMs: number;
  visionMs: number;
  cachedCrops: number;
  subImages: number;
}

export async function runBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      ...MODEL_OPTIONS,
      shape: { type: 'string' },
      dtype: { type: 'string', default: 'int4' },
      image: { type: 'string' },
      reps: { type: 'string', default: '3' },
      tokens: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      context: { type: 'boolean', default: false },
      'kv-cache': { type: 'string' },
      detail: { type: 'string', default: 'auto' },
      'vision-dtype': { type: 'string' },
      reduce: { type: 'string' },
    },
  });
  // none first: the ratios are to it
  const modes =
    values.reduce === undefined ? [...BENCH_MODES] : ['none', ...values.reduce.split(',').map((m) => formatReduceMode(parseReduceMode(m)))];
  const unique = [...new Set(modes)];
  const detail = parseDetail(values.detail);
  if (values.context && detail !== 'auto') throw new CliError(`--context times the model's own layout: leave out --detail ${detail}`);
  if (values.model !== undefined && values.shape !== undefined) throw new CliError('give --model or --shape, not both');
  const reps = wholeNumber(values.reps, '--reps', 1, 100);
  const tokens = wholeNumber(values.tokens, '--tokens', 1, 1024);
  const threads = threadCount(values.threads);
  if (values['vision-dtype'] !== undefined && values.shape === undefined) throw new CliError('--vision-dtype goes with --shape');
  const dir =
    values.shape !== undefined ? await syntheticModel(values.shape, values.dtype, values['vision-dtype']) : modelDir(values.model);
  // every mode reads the tower afresh: the cache's effect is the `again` row's
  const engine = await Engine.load(dir, {
    ep: executionProvider(values.ep),
    kvCache: kvCacheMode(values['kv-cache']),
    threads,
    visionCacheBytes: 0,
  });
  // the anyres layouts read screenshots: their default sample is one (LLaVA-NeXT: 2340 visual tokens without reduction)
  const image =
    values.image ??
    packagePath('media', 'samples', engine.manifest.layout.kind === 'tiles' ? 'editor-screenshot.png' : 'pipeline-diagram.svg');
  if (!existsSync(image)) {
    await engine.dispose();
    throw new CliError(`${image} does not exist`);
  }
  if (values.context) return reportContext(engine, image, reps, tokens, values.json, values.shape);
  const runs: Record<string, ModeRun> = {};
  let again: AgainRun;
  let followUps: FollowUpRun;
  let attached: AttachedRun;
  try {
    if (engine.manifest.randomWeights && !values.json) process.stderr.write(`${RANDOM_WEIGHTS_NOTICE}\n`);
    for (const mode of unique) {
      runs[mode] = await benchMode(engine, image, mode, reps, tokens, detail);
      if (!values.json)
        process.stderr.write(`${mode}: ${runs[mode]!.visualTokens} visual tokens, first token ${runs[mode]!.ttftMs.toFixed(0)} ms\n`);
    }
    attached = await askedAfterAttach(engine, image, tokens, detail);
    again = await askedAgain(engine, image, tokens, detail);
    followUps = await benchFollowUps(engine, image, QUESTION, tokens, detail);
  } finally {
    await engine.dispose();
  }
  const ratio = (mode: string): number => runs['none']!.ttftMs / runs[mode]!.ttftMs;
  const report = {
    ...(values.shape !== undefined ? { shape: values.shape } : { model: engine.manifest.name }),
    ep: engine.ep,
    threads: engine.threads,
    cpu: cpuDescription(),
    dtype: engine.manifest.dtype,
    detail,
    reps,
    generatedTokens: tokens,
    runs,
    again,
    attached,
    followUps,
    ratios: Object.fromEntries(unique.filter((m) => m !== 'none').map((m) => [m, ratio(m)])),
  };
  if (values.json) {
    await writeOut(`${JSON.stringify(report)}\n`);
    return;
  }
  await writeOut(
    `${benchTable(`${values.shape ?? engine.manifest.name} (${engine.manifest.dtype}, vision ${engine.manifest.vision.dtype ?? 'fp32'}, ${detail === 'auto' ? '' : `${detail} detail, `}${engine.ep}, ${engine.threads} threads)`, unique, reps, tokens, runs, ratio).join('\n')}\n` +
      `prumerge, the image attached ${ATTACH_LEAD_MS / 1000} s before the question: first token ${attached.ttftMs.toFixed(0)} ms after it (${attached.cachedCrops} of ${attached.subImages} crops read ahead)\n` +
      `prumerge, the same image in a new conversation: first token ${again.ttftMs.toFixed(0)} ms, vision ${again.visionMs.toFixed(0)} ms (${again.cachedCrops} of ${again.subImages} crops from memory)\n` +
      `${followUpLine(followUps)}\n` +
      `${cpuLine(engine.threads)}\n`,
  );
}

/** How long before the question the `attached` row starts reading the image, as the chat does on attach. */
const ATTACH_LEAD_MS = 10_000;

/** The chat's early reading: the image read ahead for ATTACH_LEAD_MS, then asked; first token timed from the question. */
interface AttachedRun {
  ttftMs: number;
  cachedCrops: number;
  subImages: number;
}

async function askedAfterAttach(engine: Engine, image: string, tokens: number, detail: Detail): Promise<AttachedRun> {
  engine.visionCache.clear();
  engine.visionCache.maxBytes = DEFAULT_VISION_CACHE_BYTES;
  const early = engine.prepare(image, detail);
  await new Promise((resolve) => setTimeout(resolve, ATTACH_LEAD_MS));
  const asked = performance.now();
  let first: number | undefined;
  const r = await askFresh(engine, image, 'prumerge', tokens, detail, {
    onStage: (stage) => stage === 'decode' && (first ??= performance.now()),
  });
  await early;
  // from the question, so that a crop still being read when it came counts
  return { ttftMs: (first ?? performance.now()) - asked, cachedCrops: r.visual.visionCached ?? 0, subImages: r.visual.visionRuns };
}

/** prumerge asked once to fill the vision cache, then again in a new conversation: what a re-ask costs. */
async function askedAgain(engine: Engine, image: string, tokens: number, detail: Detail): Promise<AgainRun> {
  engine.visionCache.maxBytes = DEFAULT_VISION_CACHE_BYTES;
  await askFresh(engine, image, 'prumerge', tokens, detail);
  const r = await askFresh(engine, image, 'prumerge', tokens, detail);
  return {
    ttftMs: r.timings.ttftMs,
    visionMs: r.timings.visionMs,
    cachedCrops: r.visual.visionCached ?? 0,
    subImages: r.visual.visionRuns,
  };
}

/** QUESTION about `image` in a new conversation, answered with exactly `tokens` tokens. */
function askFresh(engine: Engine, image: string, mode: string, tokens: number, detail: Detail, hooks: AskHooks = {}): Promise<AskResult> {
  engine.newConversation();
  return engine.ask({ image, question: QUESTION, reduce: parseReduceMode(mode), detail, maxNewTokens: tokens, fixedLength: true }, hooks);
}

/** One warm-up, then `reps` answers of exactly `tokens` tokens in a new conversation each; medians. */
async function benchMode(engine: Engine, image: string, mode: string, reps: number, tokens: number, detail: Detail): Promise<ModeRun> {
  const ask = (): Promise<AskResult> => askFresh(engine, image, mode, tokens, detail);
  await ask(); // warm-up: first-run allocations and kernel selection
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const results: AskResult[] = [];
  try {
    for (let i = 0; i < reps; i++) results.push(await ask());
  } finally {
    clearInterval(sampler);
  }
  const subImages = results[0]!.visual.visionRuns; // every sub-image the tower ran on, empty tiles too
  const visionMs = median(results.map((r) => r.timings.visionMs));
  return {
    visualTokens: results[0]!.visual.kept,
    ttftMs: median(results.map((r) => r.timings.ttftMs)),
    decodeTokensPerSecond: median(results.map((r) => r.timings.decodeTokensPerSecond)),
    peakRssMb: Math.round(peak / 2 ** 20),
    promptTokens: results[0]!.promptTokens,
    prefillMs: median(results.map((r) => r.timings.prefillMs)),
    prefillTokensPerSecond: median(results.map((r) => r.promptTokens / (r.timings.prefillMs / 1000))),
    visionMs,
    reduceMs: median(results.map((r) => r.timings.reduceMs)),
    projectorMs: median(results.map((r) => r.timings.projectorMs)),
    subImages,
    visionMsPerSubImage: visionMs / subImages,
  };
}

function benchTable(
  title: string,
  modes: readonly string[],
  reps: number,
  tokens: number,
  runs: Record<string, ModeRun>,
  ratio: (mode: string) => number,
): string[] {
  return [
    `${title}, ${reps} runs after a warm-up, ${tokens} tokens each, medians:`,
    'mode        visual tokens   first token   prefill    decode      peak memory   none / mode',
    ...modes.map((mode) => {
      const r = runs[mode]!;
      return `${mode.padEnd(12)} ${String(r.visualTokens).padStart(14)} ${`${r.ttftMs.toFixed(0)} ms`.padStart(13)} ${`${r.prefillMs.toFixed(0)} ms`.padStart(10)} ${`${r.decodeTokensPerSecond.toFixed(1)} tok/s`.padStart(12)} ${`${r.peakRssMb} MB`.padStart(12)} ${`${ratio(mode).toFixed(1)}x`.padStart(11)}`;
    }),
  ];
}

/** A synthetic model of `shape`, built once and kept under the user's cache folder. */
async function syntheticModel(shape: string, dtype: string, visionText: string | undefined): Promise<string> {
  if (!SHAPES[shape]) throw new CliError(`unknown shape "${shape}": one of ${Object.keys(SHAPES).join(', ')}`);
  if (dtype !== 'int4' && dtype !== 'fp32') throw new CliError(`--dtype must be int4 or fp32, got "${dtype}"`);
  if (visionText !== undefined && visionText !== 'int8' && visionText !== 'fp32')
    throw new CliError(`--vision-dtype must be int8 or fp32, got "${visionText}"`);
  const visionDtype = (visionText ?? defaultVisionDtype(dtype)) as 'int8' | 'fp32';
  const base = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
  // named by what the build's defaults make of it, so that a change of defaults builds afresh
  const layout = dtype === 'int4' ? `-b${DEFAULT_BLOCK_SIZE}-kv${defaultKvDtype(dtype) === 'float16' ? 16 : 32}` : '';
  const dir = join(base, 'prumerge-vision', 'synth', `${shape}-${dtype}${layout}-v${visionDtype}-seed0`);
  if (existsSync(join(dir, 'model.json'))) return dir;
  process.stderr.write(`building synthetic ${shape} (${dtype}) in ${dir}, once\n`);
  const bar = new ProgressBar();
  try {
    await buildSynthetic(shape, 0, {
      out: dir,
      dtype: dtype as WeightDtype,
      visionDtype,
      onProgress: (p) =>
        bar.update(p.bytesRead / Math.max(p.bytesTotal, 1), `${p.stage}: ${formatBytes(p.bytesRead)} of ${formatBytes(p.bytesTotal)}`),
    });
  } finally {
    bar.done();
  }
  return dir;
}

function kvCacheMode(text: string | undefined): KvCacheMode | undefined {
  if (text === undefined || text === 'in-place' || text === 'growing') return text;
  throw new CliError(`--kv-cache must be in-place or growing, got "${text}"`);
}

/** `--context`: decode speed after prompts of growing length, in one run. */
async function reportContext(
  engine: Engine,
  image: string,
  reps: number,
  tokens: number,
  json: boolean,
  shape: string | undefined,
): Promise<void> {
  let runs: ContextRun[];
  try {
    runs = await benchContext(engine, image, reps, tokens);
  } finally {
    await engine.dispose();
  }
  const title = `${shape ?? engine.manifest.name} (${engine.manifest.dtype}, ${engine.ep}, ${engine.threads} threads), ${reps} runs after a warm-up, ${tokens} tokens each, medians:`;
  await writeOut(
    json
      ? `${JSON.stringify({ ...(shape !== undefined ? { shape } : { model: engine.manifest.name }), ep: engine.ep, threads: engine.threads, cpu: cpuDescription(), dtype: engine.manifest.dtype, reps, generatedTokens: tokens, context: runs })}\n`
      : `${[title, ...contextTable(runs), cpuLine(engine.threads)].join('\n')}\n`,
  );
}

export function cpuLine(threads: number): string {
  const c = cpuDescription();
  return `${c.model}, ${c.logical} logical CPUs, ${threads} threads per graph; ${c.flags.join(' ') || 'no AVX'}`;
}
