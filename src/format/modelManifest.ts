/**
 * model.json: what the builder wrote into a model folder and what the engine loads from it. The
 * loader validates before it trusts: version, every file present, inside the folder, of the
 * recorded size (and sha256 on request).
 */
import { UserError } from '../common/errors';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import type { PreprocessConfig } from './preprocessConfig';
import { readFileSync } from 'node:fs';
import type { FamilyIds, PatchScore } from './familyIds';
import { layoutFromLegacy, LegacyTiles, ModelLayout } from './visualLayout';

export const MANIFEST_FILE = 'model.json';
export const MANIFEST_FORMAT = 'prumerge-vision-model';
export const MANIFEST_VERSION = 1;

/** The attention and KV cache's element type in decoder.onnx. */
export type KvDtype = 'float32' | 'float16';

/** fp32; fp16 (weights and activations, for GPUs); int4 (the language model's linear layers, for CPUs). */
export type WeightDtype = 'fp32' | 'fp16' | 'int4';
/** How the vision tower's linear layers are stored: float32, int8 per output channel (DynamicQuantizeMatMul), or 4-bit blocks (MatMulNBits). */
export type VisionDtype = 'fp32' | 'int8' | 'int4';

export interface ManifestFile {
  readonly bytes: number;
  readonly sha256: string;
}

export type LayerPrecision = 'int8' | 'fp32';

export interface VisionVerification {
  /** The calibration images, relative to the extension's folder. */
  readonly images: readonly string[];
  /** 7 where the CPU's u8 x s8 kernel saturates full-range weights, else 8. */
  readonly weightBits: 7 | 8;
  /** The per-layer bound: a layer's int8 output error relative to the float layer's change to its input. */
  readonly layerBound: number;
  readonly layerErrors: readonly number[];
  /** Cosine of the int8 and float towers' projected rows over every calibration patch: the worst, and the mean. */
  readonly projectedCosine: { readonly min: number; readonly mean: number };
  /** Per reading, the worst image's share of the float tower's kept patches that the int8 tower keeps too. */
  readonly keptOverlap: Readonly<Record<string, number>>;
  /**
   * Per reading, the worst image's float-tower attention on the patches the int8 tower keeps, over
   * that on the patches the float tower keeps (at most 1): what the bound is on.
   */
  readonly keptScore: Readonly<Record<string, number>>;
  /** Whether the end figures held; where not, the tower was built in float32. */
  readonly passed: boolean;
}

export interface ModelManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: typeof MANIFEST_VERSION;
  readonly name: string;
  /** Where the weights came from: a checkpoint folder's name, or "synthetic:SHAPE:SEED". */
  readonly source: string;
  /** The checkpoint folder it was built from (absent for synthetic weights and older folders). */
  readonly checkpoint?: string;
  /** True for random weights (the demo model, synth): answers are meaningless. */
  readonly randomWeights: boolean;
  readonly dtype: WeightDtype;
  readonly builder: string;
  /** The vision tower, text model and layout (docs/architecture.md); absent in folders built before families: CLIP, LLaMA, llava or llava_next. */
  readonly family?: FamilyIds;
  readonly vision: {
    readonly graph: string;
    readonly hiddenSize: number;
    readonly imageSize: number;
    readonly patchSize: number;
    /** Patches per side: imageSize / patchSize. */
    readonly grid: number;
    readonly featureLayer: number;
    readonly numLayers: number;
    /** How PruMerge scores patches (docs/prumerge.md); absent: 'cls', the CLIP towers built before SigLIP. */
    readonly score?: PatchScore;
    /** Absent in folders built before the vision tower could be quantised: as `dtype` says (fp32 for int4). */
    readonly dtype?: VisionDtype | 'fp16';
    /** int8 towers: each encoder layer the graph runs, int8 or kept float32 by the build's check. */
    readonly layerPrecision?: readonly LayerPrecision[];
    /** int8 towers: what the build's check measured against the float tower (docs/vision-int8.md). */
    readonly verification?: VisionVerification;
  };
  readonly projector: { readonly graph: string; readonly outputSize: number };
  readonly decoder: {
    readonly graph: string;
    readonly hiddenSize: number;
    readonly numLayers: number;
    readonly numKvHeads: number;
    readonly headDim: number;
    readonly vocabSize: number;
    readonly maxPositions: number;
    /** Element type of past_key_values / present. */
    readonly kvDtype: KvDtype;
    /** int4 only: weights per 4-bit block (absent in folders built before it could be chosen: 32). */
    readonly blockSize?: number;
  };
  /** The token embedding table: raw little-endian float32 (vocabSize, hiddenSize). */
  readonly embeddings: { readonly file: string; readonly dtype: 'float32'; readonly shape: readonly [number, number] };
  readonly tokenizer: {
    readonly file: string;
    readonly config: string;
    /** null where the tokenizer has none (Qwen2). */
    readonly bosTokenId: number | null;
    readonly eosTokenId: number;
    readonly imageTokenId: number;
    readonly padTokenId: number | null;
  };
  readonly chatTemplate: string;
  readonly preprocess: PreprocessConfig;
  /** How an image becomes visual rows (src/format/visualLayout.ts); folders built before it had `next`, upgraded on read. */
  readonly layout: ModelLayout;
  /** Every file of the model by name relative to the folder. */
  readonly files: Readonly<Record<string, ManifestFile>>;
}

export class ModelFolderError extends UserError {
  override readonly name = 'ModelFolderError';
}

/**
 * model.json's text -> the manifest, its format and version checked and older folders upgraded
 * (the layout block): the one reader of model.json. `dir` names the folder in messages.
 */
export function parseManifest(text: string, dir: string): ModelManifest {
  let m: ModelManifest & { next?: LegacyTiles | null };
  try {
    m = JSON.parse(text) as typeof m;
  } catch (e) {
    throw new ModelFolderError(`${join(dir, MANIFEST_FILE)} is not valid JSON (${(e as Error).message})`);
  }
  if (m?.format !== MANIFEST_FORMAT) throw new ModelFolderError(`${join(dir, MANIFEST_FILE)} is not a PruMerge Vision manifest`);
  if (m.version !== MANIFEST_VERSION) {
    throw new ModelFolderError(
      `${dir} was built by a different version of PruMerge Vision (manifest version ${m.version}, this one reads ${MANIFEST_VERSION}): rebuild it`,
    );
  }
  const named = [m.vision?.graph, m.projector?.graph, m.decoder?.graph, m.embeddings?.file, m.tokenizer?.file, m.tokenizer?.config];
  for (const name of named) {
    if (typeof name !== 'string' || !m.files?.[name])
      throw new ModelFolderError(`${join(dir, MANIFEST_FILE)} is incomplete: it does not list ${String(name)}`);
  }
  if (m.layout) return m;
  const { next, ...rest } = m;
  return { ...rest, layout: layoutFromLegacy(next) };
}

function noManifest(dir: string): ModelFolderError {
  return new ModelFolderError(`${dir} is not a model folder: it has no ${MANIFEST_FILE} (build one with \`prumerge build\`)`);
}

/** A folder's model.json, parsed (no file is checked: for what the host shows before loading). */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const text = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => {
    throw noManifest(dir);
  });
  return parseManifest(text, dir);
}

/** readManifest, for a caller that cannot wait (the status bar's render). */
export function readManifestSync(dir: string): ModelManifest {
  let text: string;
  try {
    text = readFileSync(join(dir, MANIFEST_FILE), 'utf8');
  } catch {
    throw noManifest(dir);
  }
  return parseManifest(text, dir);
}

/** Reads and checks a model folder's manifest; `verify` also re-hashes every file. */
export async function loadManifest(dir: string, options: { verify?: boolean } = {}): Promise<ModelManifest> {
  const root = resolve(dir);
  const m = await readManifest(dir);
  const realRoot = await realpath(root);
  for (const [name, info] of Object.entries(m.files)) {
    const path = insideFolder(root, name);
    let size: number;
    try {
      await linkedInside(realRoot, path, name);
      size = (await stat(path)).size;
    } catch (e) {
      if (e instanceof ModelFolderError) throw e;
      throw new ModelFolderError(`${dir} is missing ${name}: the build did not finish or files were removed; rebuild the model`);
    }
    if (size !== info.bytes)
      throw new ModelFolderError(
        `${name} in ${dir} is ${size} bytes, the manifest says ${info.bytes}: the file is truncated or was changed; rebuild the model`,
      );
    if (options.verify && (await sha256File(path)) !== info.sha256) {
      throw new ModelFolderError(`${name} in ${dir} does not match its sha256: the file is corrupt; rebuild the model`);
    }
  }
  return m;
}

/** `name` resolved inside `root`; anything that would leave it is refused. */
export function insideFolder(root: string, name: string): string {
  if (isAbsolute(name) || normalize(name).split(/[\\/]/).includes('..')) {
    throw new ModelFolderError(`the manifest names a file outside the model folder: ${name}`);
  }
  const path = resolve(root, name);
  if (!path.startsWith(root + sep)) throw new ModelFolderError(`the manifest names a file outside the model folder: ${name}`);
  return path;
}

/** Refuses a file that is a link (or sits under one) to somewhere outside the folder. */
async function linkedInside(realRoot: string, path: string, name: string): Promise<void> {
  const real = await realpath(path);
  if (!real.startsWith(realRoot + sep))
    throw new ModelFolderError(`${name} in the model folder links to ${real}, outside it: the folder was refused`);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
