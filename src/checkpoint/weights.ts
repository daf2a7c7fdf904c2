/**
 * A checkpoint's weights by the llava-hf hub's tensor names, whichever naming scheme it stores:
 *
 *   vision_tower.vision_model.*   multi_modal_projector.*   language_model.model.*   language_model.lm_head.weight
 *   image_newline (LLaVA-NeXT)
 *
 * The newer transformers layout (model.vision_tower.*, model.multi_modal_projector.*,
 * model.language_model.*, lm_head.weight, model.image_newline) is mapped onto those names.
 */
import { SeededRandom } from '../common/random';
import { CheckpointError, SafetensorsCheckpoint } from './safetensors';
import type { TensorSpec } from './tensorSpec';

export interface WeightSource {
  readonly description: string;
  /** The shape of a tensor (hub name), or undefined when the source lacks it. */
  shape(name: string): readonly number[] | undefined;
  /** The tensor's values as float32 (hub name). */
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** The vision tower (CLIP's and SigLIP's share the names). */
export const VISION = 'vision_tower.vision_model';
export const PROJECTOR = 'multi_modal_projector';
export const TEXT = 'language_model.model';
export const LM_HEAD = 'language_model.lm_head.weight';
/** The anyres layouts' learned row after each row of tile features, (text hidden). */
export const IMAGE_NEWLINE = 'image_newline';

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

/** Reads a tensor and checks its shape against what the config implies. */
export async function readWeight(weights: WeightSource, name: string, shape: readonly number[]): Promise<Float32Array> {
  const actual = weights.shape(name);
  if (!actual) throw new CheckpointError(`the checkpoint lacks ${name}`);
  if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(`${name} has shape [${actual.join(', ')}], but config.json implies [${shape.join(', ')}]`);
  }
  return weights.read(name);
}
