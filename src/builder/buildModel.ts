/**
 * Hugging Face LLaVA weights -> a model folder: vision.onnx, projector.onnx, decoder.onnx (each
 * with its .data file), embed_tokens.bin, the tokenizer files and model.json. The folder is built
 * under a temporary name and renamed into place only when complete, so a failed or cancelled
 * build never leaves a folder that looks ready.
 */
import { UserError } from '../common/errors';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isDiskFull, lackOfSpace } from '../common/diskSpace';
import { formatBytes } from '../common/formatBytes';
import { PreprocessConfig, preprocessConfigFromJson } from '../format/preprocessConfig';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  ManifestFile,
  KvDtype,
  ModelManifest,
  sha256File,
  VisionDtype,
  WeightDtype,
} from '../format/modelManifest';
import { everyLayer, LayerFormat } from '../families/family';
import { LAYOUTS } from '../families/registry';
import type { ModelLayout } from '../format/visualLayout';
import { BuildProgress, planReads, ProgressCounter } from './buildProgress';
import { int8WeightBits } from './int8WeightBits';
import { planInt8Tower, verifyInt8Tower } from './visionInt8';
import { checkTokenizer } from './tokenizerCheck';
import { featureLayer, familiesOf, LlavaConfig, llavaConfigFromJson, patchGrid } from '../families/llavaConfig';
import { LLAVA_15_CHAT_TEMPLATE } from '../families/text/llama/llamaTokenizer';
import { DataType, GraphBuilder } from '../onnx/onnxGraph';
import { BlockSize, Ops, VISION_BLOCK_SIZE } from '../onnx/ops';
import { makeProjectorGraph } from '../families/layout/projectorGraph';
import { CheckpointError } from '../checkpoint/safetensors';
import { shapeConfig } from './shapes';
import { CheckpointWeights, IMAGE_NEWLINE, readWeight, TEXT, WeightSource } from '../checkpoint/weights';
import { SyntheticWeights } from './syntheticWeights';

declare const PRUMERGE_VERSION: string | undefined;

/** The output cannot be written (no space, for one); the checkpoint itself is fine. */
export class BuildError extends UserError {
  override readonly name = 'BuildError';
}

export type { BuildProgress } from './buildProgress';

export interface BuildOptions {
  readonly out: string;
  readonly dtype: WeightDtype;
  /** The vision tower's linear layers, with float32 activations (dtype fp32 or int4); default `defaultVisionDtype`. */
  readonly visionDtype?: VisionDtype;
  /** The KV cache (and attention) of a float32-activation decoder; fp16 builds are float16 throughout. */
  readonly kvDtype?: KvDtype;
  /** int4: the language model's weights per block; default `DEFAULT_BLOCK_SIZE`. */
  readonly blockSize?: BlockSize;
  readonly name?: string;
  /** The checkpoint holds random weights (the demo model): the UI says its answers are meaningless. */
  readonly randomWeights?: boolean;
  readonly onProgress?: (p: BuildProgress) => void;
}

interface ModelInputs {
  readonly configJson: unknown;
  /** The checkpoint folder, when there is one. */
  readonly checkpoint?: string;
  readonly weights: WeightSource;
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly chatTemplate: string;
  readonly preprocess: PreprocessConfig;
  readonly source: string;
  readonly randomWeights: boolean;
}

/** Builds from a checkpoint folder in either naming scheme. */
export async function buildFromCheckpoint(hfDir: string, options: BuildOptions): Promise<ModelManifest> {
  const dir = resolve(hfDir);
  const configJson = await readJson(join(dir, 'config.json'), 'config.json');
  const config = llavaConfigFromJson(configJson); // refuse an unsupported architecture before anything else
  const tokenizerJson = await readJson(join(dir, 'tokenizer.json'), 'tokenizer.json (only fast tokenizers are supported)');
  const tokenizerConfig = existsSync(join(dir, 'tokenizer_config.json'))
    ? ((await readJson(join(dir, 'tokenizer_config.json'), 'tokenizer_config.json')) as Record<string, unknown>)
    : {};
  let preprocess = familiesOf(config).tower.defaultPreprocess(config.vision.imageSize);
  if (existsSync(join(dir, 'preprocessor_config.json'))) {
    const json = await readJson(join(dir, 'preprocessor_config.json'), 'preprocessor_config.json');
    preprocess = preprocessConfigFromJson(json);
    checkPinpoints(json, config);
  }
  const weights = await CheckpointWeights.open(dir);
  try {
    return await buildModel(
      {
        configJson,
        weights,
        tokenizerJson,
        tokenizerConfig,
        chatTemplate: await chatTemplateOf(dir, tokenizerConfig),
        preprocess,
        source: basename(dir),
        checkpoint: dir,
        randomWeights: options.randomWeights ?? false,
      },
      options,
    );
  } finally {
    await weights.close();
  }
}

/** Builds from deterministic random weights of a named shape, with its text model's tokenizer. */
export async function buildSynthetic(shape: string, seed: number, options: BuildOptions & { std?: number }): Promise<ModelManifest> {
  const configJson = shapeConfig(shape);
  const config = llavaConfigFromJson(configJson);
  const tokenizer = familiesOf(config).text.syntheticTokenizer(config.imageTokenIndex);
  return buildModel(
    {
      configJson,
      weights: new SyntheticWeights(config, seed, options.std),
      ...tokenizer,
      preprocess: familiesOf(config).tower.defaultPreprocess(config.vision.imageSize),
      source: `synthetic:${shape}:${seed}`,
      randomWeights: true,
    },
    { name: options.name ?? `${shape} (random weights)`, ...options },
  );
}

/**
 * CPU builds (int4) take the int8 tower, checked layer by layer on the weights being built
 * (visionInt8.ts; faster by docs/benchmarks.md, "The vision tower in int8"); fp32 builds stay
 * float32 throughout, the exact path the float64 reference checks; fp16 is for GPUs.
 */
export function defaultVisionDtype(dtype: WeightDtype): VisionDtype | 'fp16' {
  return dtype === 'fp16' ? 'fp16' : dtype === 'int4' ? 'int8' : 'fp32';
}

/**
 * 128 weights per 4-bit block: at 7B shapes the decoder is smaller, opens sooner and decodes faster
 * than with 32, for a larger quantisation error (docs/benchmarks.md, "Memory", gives both).
 */
export const DEFAULT_BLOCK_SIZE: BlockSize = 128;

/**
 * int4 decoders hold their cache in float16: at 7B shapes it decodes faster at every context
 * length measured and halves the cache (docs/benchmarks.md, "Memory"); fp32 builds stay float32
 * throughout, the exact path the float64 reference checks.
 */
export function defaultKvDtype(dtype: WeightDtype): KvDtype {
  return dtype === 'fp32' ? 'float32' : 'float16';
}

/** What each graph computes in. */
interface GraphTypes {
  readonly dtype: WeightDtype;
  readonly visionDtype: VisionDtype | 'fp16';
  readonly kvDtype: KvDtype;
  readonly blockSize: BlockSize;
}

function graphTypesOf(options: BuildOptions): GraphTypes {
  const { dtype } = options;
  const kvDtype: KvDtype = dtype === 'fp16' ? 'float16' : (options.kvDtype ?? defaultKvDtype(dtype));
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (options.visionDtype === undefined) return { dtype, visionDtype: defaultVisionDtype(dtype), kvDtype, blockSize };
  if (dtype === 'fp16' && options.visionDtype !== 'fp32')
    throw new BuildError(`a vision tower in ${options.visionDtype} takes float32 activations: use it with --dtype fp32 or int4, not fp16`);
  return { dtype, visionDtype: dtype === 'fp16' ? 'fp16' : options.visionDtype, kvDtype, blockSize };
}

/** A crop the tower was not made for fails only at the first question, deep in onnxruntime: refuse it here. */
function checkPreprocess(p: PreprocessConfig, imageSize: number): void {
  if (p.cropWidth !== imageSize || p.cropHeight !== imageSize)
    throw new BuildError(
      `preprocessor_config.json gives ${p.cropWidth} x ${p.cropHeight} pixel images, but the vision tower (config.json vision_config.image_size) takes ${imageSize} x ${imageSize}`,
    );
}

/** The processor and the model must agree on the grids, or the image slots and the features would not match. */
function checkPinpoints(preprocessorJson: unknown, config: LlavaConfig): void {
  const theirs = (preprocessorJson as { image_grid_pinpoints?: unknown }).image_grid_pinpoints;
  if (!config.tiles || theirs === undefined) return;
  if (JSON.stringify(theirs) !== JSON.stringify(config.tiles.gridPinpoints))
    throw new CheckpointError(
      `preprocessor_config.json's image_grid_pinpoints ${JSON.stringify(theirs)} differ from config.json's ${JSON.stringify(config.tiles.gridPinpoints)}`,
    );
}

/**
 * The processor's template first, as transformers' processor.apply_chat_template reads it: a
 * tokenizer_config.json template may be the text model's own, which knows no images (the
 * OneVision checkpoints carry Qwen2's there).
 */
async function chatTemplateOf(dir: string, tokenizerConfig: Record<string, unknown>): Promise<string> {
  if (existsSync(join(dir, 'chat_template.jinja'))) return readFile(join(dir, 'chat_template.jinja'), 'utf8');
  if (existsSync(join(dir, 'chat_template.json'))) {
    const t = ((await readJson(join(dir, 'chat_template.json'), 'chat_template.json')) as { chat_template?: unknown }).chat_template;
    if (typeof t === 'string') return t;
  }
  if (typeof tokenizerConfig['chat_template'] === 'string') return tokenizerConfig['chat_template'];
  return LLAVA_15_CHAT_TEMPLATE; // llava-1.5 checkpoints without one were trained on this format
}

async function buildModel(inputs: ModelInputs, options: BuildOptions): Promise<ModelManifest> {
  const config = llavaConfigFromJson(inputs.configJson);
  const tokenizer = checkTokenizer(inputs, config.imageTokenIndex, config.text.vocabSize);
  checkPreprocess(inputs.preprocess, config.vision.imageSize);
  const types = graphTypesOf(options);
  const out = resolve(options.out);
  await checkOutputFolder(out);
  const partial = `${out}.partial`;
  await rm(partial, { recursive: true, force: true });
  const plan = planReads(config, options.dtype);
  const lack = await lackOfSpace(dirname(out), plan.bytesAtLeast, `the ${options.dtype} model`);
  if (lack) throw new BuildError(lack);
  await mkdir(partial, { recursive: true });
  const progress = new ProgressCounter(plan, options.onProgress);
  try {
    const graphs = await writeGraphs(partial, config, inputs, types, progress);
    const weights = progress.counting(inputs.weights);
    await writeTables(partial, config, inputs, weights, progress);
    progress.enter('manifest');
    const layout: ModelLayout = config.tiles
      ? {
          kind: 'tiles',
          gridPinpoints: config.tiles.gridPinpoints,
          imageNewline: Array.from(await readWeight(weights, IMAGE_NEWLINE, [config.text.hiddenSize])),
          ...(config.tiles.maxTiles !== undefined ? { maxTiles: config.tiles.maxTiles } : {}),
          paddedCrop: LAYOUTS[config.family.layout].paddedCrop,
        }
      : { kind: 'grid' };
    const manifest = manifestOf(config, types, graphs, {
      layout,
      name: options.name ?? inputs.source,
      source: inputs.source,
      ...(inputs.checkpoint ? { checkpoint: inputs.checkpoint } : {}),
      randomWeights: inputs.randomWeights,
      tokenizer: { file: 'tokenizer.json', config: 'tokenizer_config.json', ...tokenizer },
      chatTemplate: inputs.chatTemplate,
      preprocess: inputs.preprocess,
      files: await fileList(partial),
    });
    await writeFile(join(partial, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(out, { recursive: true, force: true });
    await rename(partial, out);
    return manifest;
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    if (isDiskFull(e)) {
      throw new BuildError(
        `the disk filled up while writing the model to ${out} (it needs more than ${formatBytes(plan.bytesAtLeast)}): free some space and build again; the unfinished folder was removed`,
      );
    }
    throw e;
  }
}

type GraphFiles = Record<'vision' | 'projector' | 'decoder', string> & {
  /** int8 towers: what the check chose and measured; `dtype` fp32 where its end figures failed. */
  readonly int8?: Pick<ModelManifest['vision'], 'dtype' | 'layerPrecision' | 'verification'>;
};

/** vision.onnx, projector.onnx and decoder.onnx, each with its .data file. */
async function writeGraphs(
  partial: string,
  config: LlavaConfig,
  inputs: Pick<ModelInputs, 'weights' | 'preprocess' | 'source'>,
  types: GraphTypes,
  progress: ProgressCounter,
): Promise<GraphFiles> {
  const { dtype, visionDtype, kvDtype, blockSize } = types;
  const weights = progress.counting(inputs.weights);
  const bits = int8WeightBits();
  const graph = async (name: 'vision' | 'projector' | 'decoder', make: (ops: Ops) => Promise<void>): Promise<string> => {
    progress.enter(name);
    const file = `${name}.onnx`;
    const g = new GraphBuilder(name, join(partial, `${file}.data`));
    try {
      await make(new Ops(g, weights, dtype === 'fp16' ? 'fp16' : 'fp32', name === 'decoder' ? blockSize : VISION_BLOCK_SIZE, bits));
      await g.save(join(partial, file), `${name} graph of ${inputs.source}, built by PruMerge Vision`);
    } catch (e) {
      g.abandon();
      throw e;
    }
    return file;
  };
  const { tower } = familiesOf(config);
  // the check reads the tower's weights again and again: not counted as the build's progress
  if (visionDtype === 'int8') progress.enter('int8 check');
  const plan =
    visionDtype === 'int8'
      ? await planInt8Tower({ scratch: partial, config, weights: inputs.weights, preprocess: inputs.preprocess, bits })
      : undefined;
  const towerGraph = (format: LayerFormat) => graph('vision', (ops) => tower.makeGraph(ops, config, format));
  const vision = await towerGraph(plan?.format ?? everyLayer(visionDtype === 'int4' ? 'int4' : 'float'));
  const projector = await graph('projector', (ops) => makeProjectorGraph(ops, config));
  let int8: GraphFiles['int8'];
  if (plan) {
    progress.enter('int8 check');
    const verification = await verifyInt8Tower(plan, config, join(partial, vision), join(partial, projector));
    if (!verification.passed) await towerGraph(everyLayer('float'));
    const layerPrecision = verification.passed ? plan.precision : plan.precision.map(() => 'fp32' as const);
    int8 = { dtype: verification.passed ? 'int8' : 'fp32', layerPrecision, verification };
  }
  const { text } = familiesOf(config);
  const decoder = await graph('decoder', (ops) =>
    text.makeGraph(ops, config, dtype === 'int4' ? 'int4' : 'float', kvDtype === 'float16' ? DataType.FLOAT16 : ops.floatType),
  );
  return { vision, projector, decoder, ...(int8 ? { int8 } : {}) };
}

/** embed_tokens.bin (raw float32) and the tokenizer files. */
async function writeTables(
  partial: string,
  config: LlavaConfig,
  inputs: ModelInputs,
  weights: WeightSource,
  progress: ProgressCounter,
): Promise<void> {
  progress.enter('embeddings');
  const t = config.text;
  const table = await readWeight(weights, `${TEXT}.embed_tokens.weight`, [t.vocabSize, t.hiddenSize]);
  await writeFile(join(partial, 'embed_tokens.bin'), new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
  progress.enter('tokenizer');
  await writeFile(join(partial, 'tokenizer.json'), JSON.stringify(inputs.tokenizerJson));
  await writeFile(join(partial, 'tokenizer_config.json'), `${JSON.stringify(inputs.tokenizerConfig, null, 2)}\n`);
}

type ManifestRest = Pick<
  ModelManifest,
  'name' | 'source' | 'checkpoint' | 'randomWeights' | 'tokenizer' | 'chatTemplate' | 'preprocess' | 'layout' | 'files'
>;

/** model.json: the shapes as the engine reads them, in the order a reader expects. */
function manifestOf(config: LlavaConfig, types: GraphTypes, graphs: GraphFiles, rest: ManifestRest): ModelManifest {
  const { dtype, visionDtype, kvDtype, blockSize } = types;
  const t = config.text;
  const { tokenizer, chatTemplate, preprocess, layout, files } = rest;
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    name: rest.name,
    source: rest.source,
    ...(rest.checkpoint ? { checkpoint: rest.checkpoint } : {}),
    randomWeights: rest.randomWeights,
    dtype,
    builder: `prumerge-vision ${typeof PRUMERGE_VERSION === 'string' ? PRUMERGE_VERSION : 'dev'}`,
    family: config.family,
    vision: {
      graph: graphs.vision,
      hiddenSize: config.vision.hiddenSize,
      imageSize: config.vision.imageSize,
      patchSize: config.vision.patchSize,
      grid: patchGrid(config),
      featureLayer: featureLayer(config),
      score: familiesOf(config).tower.score,
      numLayers: config.vision.numLayers,
      dtype: visionDtype,
      ...graphs.int8,
    },
    projector: { graph: graphs.projector, outputSize: t.hiddenSize },
    decoder: {
      graph: graphs.decoder,
      hiddenSize: t.hiddenSize,
      numLayers: t.numLayers,
      numKvHeads: t.numKvHeads,
      headDim: t.headDim,
      vocabSize: t.vocabSize,
      maxPositions: t.maxPositionEmbeddings,
      kvDtype,
      ...(dtype === 'int4' ? { blockSize } : {}),
    },
    embeddings: { file: 'embed_tokens.bin', dtype: 'float32', shape: [t.vocabSize, t.hiddenSize] },
    tokenizer,
    chatTemplate,
    preprocess,
    layout,
    files,
  };
}

/** Every file of the finished folder with its size and sha256, in name order. */
async function fileList(dir: string): Promise<Record<string, ManifestFile>> {
  const files: Record<string, ManifestFile> = {};
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    files[name] = { bytes: (await stat(path)).size, sha256: await sha256File(path) };
  }
  return files;
}

/** Refuses to replace a folder that is not a model folder (or empty). */
async function checkOutputFolder(out: string): Promise<void> {
  if (!existsSync(out)) return;
  const s = await stat(out);
  if (!s.isDirectory()) throw new CheckpointError(`${out} exists and is not a folder`);
  const entries = await readdir(out);
  if (entries.length > 0 && !entries.includes(MANIFEST_FILE)) {
    throw new CheckpointError(`${out} exists and is not a model folder: choose an empty or new folder`);
  }
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CheckpointError(`the checkpoint folder lacks ${what}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${basename(path)} is not valid JSON (${(e as Error).message})`);
  }
}
