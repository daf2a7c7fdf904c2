import { syntheticTensor, WeightSource } from '../checkpoint/weights';
import { CheckpointError } from '../checkpoint/safetensors';
import type { TensorSpec } from '../checkpoint/tensorSpec';
import type { LlavaConfig } from '../families/llavaConfig';
import { llavaTensors } from '../families/llavaTensors';

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
