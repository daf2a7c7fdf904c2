/**
 * Where the builder's weights come from: a safetensors checkpoint (either naming scheme), or
 * synthetic random weights of any named shape. Both answer to the llava-hf hub's tensor names:
 *
 *   vision_tower.vision_model.*   multi_modal_projector.*   language_model.model.*   language_model.lm_head.weight
 *   image_newline (LLaVA-NeXT)
 *
 * The newer transformers layout (model.vision_tower.*, model.multi_modal_projector.*,
 * model.language_model.*, lm_head.weight, model.image_newline) is mapped onto those names.
 */
import { SeededRandom } from '../common/random';
import { LlavaConfig } from './llavaConfig';
import { CheckpointError, SafetensorsCheckpoint } from './safetensors';

export interface WeightSource {
  readonly description: string;
  /** The shape of a tensor (hub name), or undefined when the source lacks it. */
  shape(name: string): readonly number[] | undefined;
  /** The tensor's values as float32 (hub name). */
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** How synthetic values are drawn: layer-norm gains near 1, everything else near 0. */
  readonly init: 'weight' | 'bias' | 'norm' | 'embedding';
}

export const VISION = 'vision_tower.vision_model';
export const PROJECTOR = 'multi_modal_projector';
export const TEXT = 'language_model.model';
export const LM_HEAD = 'language_model.lm_head.weight';
/** LLaVA-NeXT's learned row after each row of tile features, (text hidden). */
export const IMAGE_NEWLINE = 'image_newline';

/** Every tensor of a LlavaForConditionalGeneration checkpoint, by hub name, with its shape. */
export function llavaTensors(config: LlavaConfig): TensorSpec[] {
  const v = config.vision;
  const t = config.text;
  const c = v.hiddenSize;
  const grid = v.imageSize / v.patchSize;
  const specs: TensorSpec[] = [
    { name: `${VISION}.embeddings.class_embedding`, shape: [c], init: 'embedding' },
    { name: `${VISION}.embeddings.patch_embedding.weight`, shape: [c, v.numChannels, v.patchSize, v.patchSize], init: 'weight' },
    { name: `${VISION}.embeddings.position_embedding.weight`, shape: [grid * grid + 1, c], init: 'embedding' },
    ...layerNorm(`${VISION}.pre_layrnorm`, c),
  ];
  for (let i = 0; i < v.numLayers; i++) {
    const p = `${VISION}.encoder.layers.${i}`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) specs.push(...linear(`${p}.self_attn.${proj}`, c, c, true));
    specs.push(...layerNorm(`${p}.layer_norm1`, c), ...linear(`${p}.mlp.fc1`, c, v.intermediateSize, true));
    specs.push(...linear(`${p}.mlp.fc2`, v.intermediateSize, c, true), ...layerNorm(`${p}.layer_norm2`, c));
  }
  specs.push(...layerNorm(`${VISION}.post_layernorm`, c));
  specs.push(
    ...linear(`${PROJECTOR}.linear_1`, c, t.hiddenSize, true),
    ...linear(`${PROJECTOR}.linear_2`, t.hiddenSize, t.hiddenSize, true),
  );

  const h = t.hiddenSize;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  specs.push({ name: `${TEXT}.embed_tokens.weight`, shape: [t.vocabSize, h], init: 'embedding' });
  for (let i = 0; i < t.numLayers; i++) {
    const p = `${TEXT}.layers.${i}`;
    specs.push(...linear(`${p}.self_attn.q_proj`, h, q, false), ...linear(`${p}.self_attn.k_proj`, h, kv, false));
    specs.push(...linear(`${p}.self_attn.v_proj`, h, kv, false), ...linear(`${p}.self_attn.o_proj`, q, h, false));
    specs.push(...linear(`${p}.mlp.gate_proj`, h, t.intermediateSize, false), ...linear(`${p}.mlp.up_proj`, h, t.intermediateSize, false));
    specs.push(...linear(`${p}.mlp.down_proj`, t.intermediateSize, h, false));
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [h], init: 'norm' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'norm' },
    );
  }
  specs.push({ name: `${TEXT}.norm.weight`, shape: [h], init: 'norm' });
  if (!t.tieWordEmbeddings) specs.push({ name: LM_HEAD, shape: [t.vocabSize, h], init: 'weight' });
  if (config.next) specs.push({ name: IMAGE_NEWLINE, shape: [h], init: 'embedding' });
  return specs;
}

/**
 * The tensors a build reads: everything but the vision layers PruMerge stops before (layer f's
 * attention output and MLP, the layers after f, post_layernorm). The tied lm_head is the table.
 */
export function tensorsToRead(config: LlavaConfig, featureLayer: number): TensorSpec[] {
  const layer = /^vision_tower\.vision_model\.encoder\.layers\.(\d+)\.(.*)$/;
  return llavaTensors(config).filter((spec) => {
    if (spec.name.startsWith(`${VISION}.post_layernorm`)) return false;
    const m = layer.exec(spec.name);
    if (!m) return true;
    const i = Number(m[1]);
    if (i < featureLayer) return true;
    return i === featureLayer && /^(layer_norm1|self_attn\.q_proj|self_attn\.k_proj)\./.test(m[2]!);
  });
}

function linear(prefix: string, inFeatures: number, outFeatures: number, bias: boolean): TensorSpec[] {
  const specs: TensorSpec[] = [{ name: `${prefix}.weight`, shape: [outFeatures, inFeatures], init: 'weight' }];
  if (bias) specs.push({ name: `${prefix}.bias`, shape: [outFeatures], init: 'bias' });
  return specs;
}

function layerNorm(prefix: string, width: number): TensorSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [width], init: 'norm' },
    { name: `${prefix}.bias`, shape: [width], init: 'bias' },
  ];
}

/** Hub name -> the name in the newer transformers layout. */
export function newLayoutName(hubName: string): string {
  if (hubName === LM_HEAD) return 'lm_head.weight';
  if (hubName.startsWith(`${TEXT}.`)) return `model.language_model.${hubName.slice(TEXT.length + 1)}`;
  if (hubName.startsWith('vision_tower.') || hubName.startsWith(`${PROJECTOR}.`) || hubName === IMAGE_NEWLINE) return `model.${hubName}`;
  return hubName;
}

/** A safetensors checkpoint seen through hub names. */
export class CheckpointWeights implements WeightSource {
  readonly description: string;

  private constructor(
    private readonly checkpoint: SafetensorsCheckpoint,
    private readonly newLayout: boolean,
  ) {
    this.description = `${checkpoint.dir} (${newLayout ? 'transformers model.* layout' : 'llava-hf hub layout'})`;
  }

  static async open(dir: string): Promise<CheckpointWeights> {
    const checkpoint = await SafetensorsCheckpoint.open(dir);
    const names = checkpoint.names();
    const newLayout = names.some((n) => n.startsWith('model.language_model.') || n.startsWith('model.vision_tower.'));
    const oldLayout = names.some((n) => n.startsWith(`${TEXT}.`) || n.startsWith('vision_tower.'));
    if (newLayout && oldLayout) {
      await checkpoint.close();
      throw new CheckpointError(`${dir} mixes the hub's and transformers' tensor naming schemes`);
    }
    if (!newLayout && !oldLayout) {
      await checkpoint.close();
      throw new CheckpointError(`${dir} holds no LLaVA tensors (expected vision_tower.* and language_model.*): is it a LLaVA checkpoint?`);
    }
    return new CheckpointWeights(checkpoint, newLayout);
  }

  private stored(name: string): string {
    return this.newLayout ? newLayoutName(name) : name;
  }

  shape(name: string): readonly number[] | undefined {
    return this.checkpoint.entry(this.stored(name))?.shape;
  }

  read(name: string): Promise<Float32Array> {
    return this.checkpoint.read(this.stored(name));
  }

  close(): Promise<void> {
    return this.checkpoint.close();
  }
}

/**
 * Deterministic random weights for every tensor a config implies: the same name and seed give
 * the same values on every machine. Weights and biases ~ uniform with std `std` (default 0.02,
 * transformers' initializer range), norm gains 1 +- 0.1, embeddings std 1 / sqrt(width).
 */
export class SyntheticWeights implements WeightSource {
  private readonly specs: Map<string, TensorSpec>;
  readonly description: string;

  constructor(
    config: LlavaConfig,
    private readonly seed: number,
    private readonly std = 0.02,
  ) {
    this.specs = new Map(llavaTensors(config).map((s) => [s.name, s]));
    this.description = `synthetic weights (seed ${seed})`;
  }

  shape(name: string): readonly number[] | undefined {
    return this.specs.get(name)?.shape;
  }

  async read(name: string): Promise<Float32Array> {
    const spec = this.specs.get(name);
    if (!spec) throw new CheckpointError(`synthetic weights have no tensor ${name}`);
    return syntheticTensor(spec, this.seed, this.std);
  }

  async close(): Promise<void> {}
}

export function syntheticTensor(spec: TensorSpec, seed: number, weightStd = 0.02): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const rng = new SeededRandom((seed ^ hashName(spec.name)) >>> 0);
  const width = spec.shape[spec.shape.length - 1] ?? 1;
  const [centre, std] = spec.init === 'norm' ? [1, 0.1] : spec.init === 'embedding' ? [0, 1 / Math.sqrt(width)] : [0, weightStd];
  const half = std * Math.sqrt(3); // uniform on [-half, half] has this std
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = centre + (2 * rng.uniform() - 1) * half;
  return out;
}

/** FNV-1a, 32 bits. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
