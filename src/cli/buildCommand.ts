/** `prumerge build` and `prumerge synth`: make a model folder from a checkpoint or a named shape. */
import { visionPrecisionText } from '../shared/visionPrecision';
import { parseArgs } from 'node:util';
import { BuildOptions, BuildProgress, buildFromCheckpoint, buildSynthetic, DEFAULT_BLOCK_SIZE } from '../builder/buildModel';
import { BLOCK_SIZES, BlockSize } from '../onnx/ops';
import { SHAPES } from '../builder/shapes';
import { ModelManifest, VisionDtype, WeightDtype } from '../format/modelManifest';
import { CliError } from './cliError';
import { wholeNumber, writeOut } from './io';
import { formatBytes } from '../common/formatBytes';
import { ProgressBar } from './progressBar';

const DTYPES: readonly WeightDtype[] = ['fp32', 'fp16', 'int4'];
const VISION_DTYPES: readonly VisionDtype[] = ['fp32', 'int8', 'int4'];

export const BUILD_USAGE = `usage: prumerge build --from HF_DIR --out MODEL_DIR [--dtype fp32|fp16|int4] [--vision-dtype fp32|int8|int4] [--kv-dtype float32|float16] [--block-size 32|64|128] [--json]

Builds a model folder (ONNX graphs with PruMerge's taps, the embedding table, the tokenizer,
model.json) from a Hugging Face checkpoint folder: LlavaForConditionalGeneration (LLaVA-1.5,
LLaVA-Interleave), LlavaNextForConditionalGeneration (LLaVA-NeXT) or
LlavaOnevisionForConditionalGeneration (LLaVA-OneVision); config.json, model.safetensors or
sharded safetensors with model.safetensors.index.json, tokenizer.json.

  --dtype fp32    float32 weights everywhere (default)
  --dtype fp16    float16 weights and activations, half the size: for GPU execution providers
  --dtype int4    the language model's linear layers in 4-bit blocks (MatMulNBits), for CPU decoding
  --vision-dtype  the vision tower's linear layers: int8 (the default with --dtype int4: per-channel
                  weights on the CPU's u8 x s8 kernel, checked against the float tower at build time,
                  docs/vision-int8.md), fp32 (the default with --dtype fp32), or int4 blocks (less disk)
  --kv-dtype      the language model's attention and KV cache: float32 or float16 (half the cache to
                  hold and read); default float32 with --dtype fp32, float16 otherwise
  --block-size    with --dtype int4: weights per 4-bit block, 32, 64 or ${DEFAULT_BLOCK_SIZE} (default): smaller
                  blocks follow the weights more closely, larger ones take less memory and decode faster`;

export const SYNTH_USAGE = `usage: prumerge synth --shape NAME --out MODEL_DIR [--dtype fp32|fp16|int4] [--vision-dtype fp32|int8|int4] [--kv-dtype float32|float16] [--block-size 32|64|128] [--seed N] [--json]

Builds a model folder from deterministic random weights of a named shape, for benchmarks at real
sizes without a download. Its answers are meaningless. Shapes: ${Object.keys(SHAPES).join(', ')}.`;

const OPTIONS = {
  out: { type: 'string' },
  dtype: { type: 'string', default: 'fp32' },
  'vision-dtype': { type: 'string' },
  'kv-dtype': { type: 'string' },
  'block-size': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export async function runBuild(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { ...OPTIONS, from: { type: 'string' } } });
  if (!values.from) throw new CliError('--from HF_DIR is required (the checkpoint folder)');
  const options = buildOptions(values);
  await report(() => buildFromCheckpoint(values.from!, options.build), options);
}

export async function runSynth(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { ...OPTIONS, shape: { type: 'string' }, seed: { type: 'string', default: '0' } },
  });
  if (!values.shape) throw new CliError(`--shape NAME is required: one of ${Object.keys(SHAPES).join(', ')}`);
  if (!SHAPES[values.shape]) throw new CliError(`unknown shape "${values.shape}": one of ${Object.keys(SHAPES).join(', ')}`);
  const seed = wholeNumber(values.seed, '--seed', 0, 2 ** 32 - 1);
  const options = buildOptions(values);
  await report(() => buildSynthetic(values.shape!, seed, options.build), options);
}

function buildOptions(values: {
  out?: string;
  dtype: string;
  'vision-dtype'?: string;
  'kv-dtype'?: string;
  'block-size'?: string;
  json: boolean;
}): {
  build: BuildOptions;
  json: boolean;
  bar: ProgressBar;
} {
  if (!values.out) throw new CliError('--out MODEL_DIR is required (where the model folder goes)');
  if (!DTYPES.includes(values.dtype as WeightDtype))
    throw new CliError(`--dtype must be one of ${DTYPES.join(', ')}, got "${values.dtype}"`);
  const visionDtype = values['vision-dtype'] as VisionDtype | undefined;
  if (visionDtype !== undefined && !VISION_DTYPES.includes(visionDtype))
    throw new CliError(`--vision-dtype must be one of ${VISION_DTYPES.join(', ')}, got "${visionDtype}"`);
  const kvDtype = values['kv-dtype'];
  if (kvDtype !== undefined && kvDtype !== 'float32' && kvDtype !== 'float16')
    throw new CliError(`--kv-dtype must be float32 or float16, got "${kvDtype}"`);
  const blockSize = values['block-size'] === undefined ? undefined : (Number(values['block-size']) as BlockSize);
  if (blockSize !== undefined && !BLOCK_SIZES.includes(blockSize))
    throw new CliError(`--block-size must be one of ${BLOCK_SIZES.join(', ')}, got "${values['block-size']}"`);
  if (blockSize !== undefined && values.dtype !== 'int4')
    throw new CliError('--block-size goes with --dtype int4 (only 4-bit weights have blocks)');
  const bar = new ProgressBar();
  const onProgress = (p: BuildProgress): void =>
    bar.update(
      p.bytesRead / Math.max(p.bytesTotal, 1),
      `${p.stage}: ${p.tensorsRead}/${p.tensorsTotal} tensors, ${formatBytes(p.bytesRead)} of ${formatBytes(p.bytesTotal)}`,
    );
  return {
    build: {
      out: values.out,
      dtype: values.dtype as WeightDtype,
      ...(visionDtype ? { visionDtype } : {}),
      ...(kvDtype ? { kvDtype } : {}),
      ...(blockSize ? { blockSize } : {}),
      onProgress,
    },
    json: values.json,
    bar,
  };
}

function visionFacts(m: ModelManifest): Pick<ModelManifest['vision'], 'dtype' | 'layerPrecision' | 'verification'> {
  const { dtype, layerPrecision, verification } = m.vision;
  return { dtype, ...(layerPrecision ? { layerPrecision } : {}), ...(verification ? { verification } : {}) };
}

async function report(
  build: () => Promise<ModelManifest>,
  options: { build: BuildOptions; json: boolean; bar: ProgressBar },
): Promise<void> {
  const started = Date.now();
  let manifest: ModelManifest;
  try {
    manifest = await build();
  } finally {
    options.bar.done();
  }
  const seconds = (Date.now() - started) / 1000;
  const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  if (options.json) {
    await writeOut(
      `${JSON.stringify({ out: options.build.out, name: manifest.name, dtype: manifest.dtype, vision: visionFacts(manifest), bytes, seconds, peakRssMb, files: manifest.files })}\n`,
    );
    return;
  }
  await writeOut(
    `built ${manifest.name} (${manifest.dtype}) in ${options.build.out}: ${Object.keys(manifest.files).length} files, ${formatBytes(bytes)}, ${seconds.toFixed(1)} s, peak memory ${peakRssMb} MB\n` +
      `${visionPrecisionText(manifest.vision)}\n` +
      (manifest.randomWeights ? 'random weights: its answers are meaningless\n' : ''),
  );
}
