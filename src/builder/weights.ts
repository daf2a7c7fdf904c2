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
import { VISION } from '../families/vision/encoderLayer';
import { familiesOf, LlavaConfig } from './llavaConfig';
import { CheckpointError, SafetensorsCheckpoint } from './safetensors';
import { linearSpecs, TensorSpec } from './tensorSpec';

export type { TensorSpec };

export interface WeightSource {
  readonly description: string;
  /** The shape of a tensor (hub name), or undefined when the source lacks it. */
  shape(name: string): readonly number[] | undefined;
  /** The tensor's values as float32 (hub name). */
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export { VISION };
export const PROJECTOR = 'multi_modal_projector';
export const TEXT = 'language_model.model';
export const LM_HEAD = 'language_model.lm_head.weight';
/** The anyres layouts' learned row after each row of tile features, (text hidden). */
export const IMAGE_NEWLINE = 'image_newline';

/** Every tensor of the checkpoint a config describes, by hub name, with its shape. */
export function llavaTensors(config: LlavaConfig): TensorSpec[] {
  const v = config.vision;
  const t = config.text;
  const { tower } = familiesOf(config);
  const specs: TensorSpec[] = tower.tensors(v);
  specs.push(
    ...linearSpecs(`${PROJECTOR}.linear_1`, v.hiddenSize, t.hiddenSize, true),
    ...linearSpecs(`${PROJECTOR}.linear_2`, t.hiddenSize, t.hiddenSize, true),
  );

  const h = t.hiddenSize;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const bias = t.attentionBias;
  specs.push({ name: `${TEXT}.embed_tokens.weight`, shape: [t.vocabSize, h], init: 'embedding' });
  for (let i = 0; i < t.numLayers; i++) {
    const p = `${TEXT}.layers.${i}`;
    specs.push(...linearSpecs(`${p}.self_attn.q_proj`, h, q, bias), ...linearSpecs(`${p}.self_attn.k_proj`, h, kv, bias));
    specs.push(...linearSpecs(`${p}.self_attn.v_proj`, h, kv, bias), ...linearSpecs(`${p}.self_attn.o_proj`, q, h, false));
    specs.push(
      ...linearSpecs(`${p}.mlp.gate_proj`, h, t.intermediateSize, false),
      ...linearSpecs(`${p}.mlp.up_proj`, h, t.intermediateSize, false),
    );
    specs.push(...linearSpecs(`${p}.mlp.down_proj`, t.intermediateSize, h, false));
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
 * The tensors a build reads: everything but the vision layers past where the tower's graph stops
 * (and post_layernorm). The tied lm_head is the table.
 */
export function tensorsToRead(config: LlavaConfig): TensorSpec[] {
  const { tower } = familiesOf(config);
  return llavaTensors(config).filter((spec) => !spec.name.startsWith(`${VISION}.`) || tower.reads(spec.name, config));
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
