/** Tiny random LLaVA checkpoints on disk, and the weights the reference reads them as. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { familiesOf, LlavaConfig, llavaConfigFromJson } from '../../src/families/llavaConfig';
import { RandomCheckpointOptions, writeRandomCheckpoint } from '../../src/builder/randomCheckpoint';
import { shapeConfig } from '../../src/builder/shapes';
import { syntheticTensor } from '../../src/checkpoint/weights';
import { llavaTensors } from '../../src/families/llavaTensors';
import { decoderFeeds, KvCache, KvDtype } from '../../src/pipeline/kv/decoderFeeds';
import { DECODER_IO } from '../../src/format/graphNames';
import { TextRef, VisionRef, Weights } from '../reference/llavaReference';

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `prumerge-${prefix}-`));
}

export interface TinyCheckpoint {
  readonly dir: string;
  readonly configJson: Record<string, unknown>;
  readonly config: LlavaConfig;
  /** The values written, by hub name, as the float64 reference reads them. */
  readonly weights: Weights;
}

export type TinyShape = 'tiny' | 'tiny-next' | 'tiny-onevision' | 'tiny-interleave';

/** Writes a tiny shape (or a variant of one) as a full checkpoint folder, tokenizer and processor config included. */
export async function tinyCheckpoint(
  options: RandomCheckpointOptions,
  edit: (config: Record<string, unknown>) => void = () => {},
  shape: TinyShape = 'tiny',
): Promise<TinyCheckpoint> {
  const configJson = shapeConfig(shape);
  edit(configJson);
  const config = llavaConfigFromJson(configJson);
  const dir = scratchDir('ckpt');
  await writeRandomCheckpoint(dir, configJson, options);
  const tokenizer = familiesOf(config).text.syntheticTokenizer(config.imageTokenIndex);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizer.tokenizerConfig));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(processorConfig(config)));
  const specs = new Map(llavaTensors(config).map((s) => [s.name, s]));
  const cache = new Map<string, Float32Array>();
  const weights: Weights = (name) => {
    let data = cache.get(name);
    if (!data) {
      const spec = specs.get(name);
      if (!spec) throw new Error(`no tensor ${name}`);
      const random = (n: string): Float32Array => syntheticTensor(specs.get(n)!, options.seed, options.std);
      data = stored(options.override?.(name, random) ?? random(name), options.dtype ?? 'F32');
      cache.set(name, data);
    }
    return data;
  };
  return { dir, configJson, config, weights };
}

/** The values as they come back from the stored dtype (bf16 keeps the top 16 bits, rounded). */
function stored(data: Float32Array, dtype: string): Float32Array {
  if (dtype !== 'BF16') return data;
  const u = new Uint32Array(data.buffer.slice(0));
  for (let i = 0; i < u.length; i++) u[i] = ((u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(u.buffer);
}

/** preprocessor_config.json as the hub's checkpoints of each family write it. */
function processorConfig(config: LlavaConfig): Record<string, unknown> {
  const size = config.vision.imageSize;
  if (config.family.vision === 'siglip') {
    const common = { size: { height: size, width: size }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 3 };
    return config.tiles
      ? { image_processor_type: 'LlavaOnevisionImageProcessor', image_grid_pinpoints: config.tiles.gridPinpoints, do_pad: true, ...common }
      : { image_processor_type: 'SiglipImageProcessor', ...common };
  }
  return {
    crop_size: { height: size, width: size },
    size: { shortest_edge: size },
    ...(config.tiles
      ? { image_processor_type: 'LlavaNextImageProcessor', image_grid_pinpoints: config.tiles.gridPinpoints, do_pad: true }
      : { image_processor_type: 'CLIPImageProcessor' }),
  };
}

export function visionRef(config: LlavaConfig): VisionRef {
  return { ...config.vision };
}

export function textRef(config: LlavaConfig): TextRef {
  return { ...config.text };
}

/** Runs decoder.onnx on `embeds` (S, H) after a cache of `past` positions; returns logits and cache. */
export async function decoderStep(
  session: ort.InferenceSession,
  config: LlavaConfig,
  embeds: Float32Array,
  cache: KvCache | undefined,
  past: number,
): Promise<{ logits: Float32Array; cache: KvCache }> {
  const kvDtype = kvDtypeOf(session);
  const out = await session.run(decoderFeeds({ ...config.text, kvDtype }, embeds, cache, past));
  return { logits: out[DECODER_IO.logits]!.data as Float32Array, cache: out };
}

/** The decoder's cache element type, read from the graph's input metadata. */
function kvDtypeOf(session: ort.InferenceSession): KvDtype {
  const meta = (session as unknown as { inputMetadata?: { name: string; type?: string }[] }).inputMetadata;
  return meta?.find((m) => m.name === DECODER_IO.pastKey(0))?.type === 'float16' ? 'float16' : 'float32';
}

/** Largest |a - b| relative to the largest |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}
