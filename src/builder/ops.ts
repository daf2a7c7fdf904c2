/**
 * The blocks graphs are made of, one make* per block as in onnxruntime-genai's builder. Weights
 * are read from the source under their Hugging Face names and stored under the same names.
 */
import { attr, DataType, GraphBuilder, MS_DOMAIN } from './onnxGraph';
import { quantize4 } from './quantize';
import { CheckpointError } from './safetensors';
import { WeightSource } from './weights';

/** How linear-layer weights are stored: float32, or 4-bit blocks for MatMulNBits. */
export type LinearFormat = 'fp32' | 'int4';

/** MatMulNBits block size (32: the better accuracy of the two sizes onnxruntime's CPU kernel favours). */
export const INT4_BLOCK_SIZE = 32;

export class Ops {
  constructor(
    readonly g: GraphBuilder,
    private readonly weights: WeightSource,
  ) {}

  weight(name: string, shape: readonly number[]): Promise<Float32Array> {
    return readWeight(this.weights, name, shape);
  }

  /** A float32 initializer straight from the checkpoint. */
  async tensor(name: string, shape: readonly number[]): Promise<string> {
    return this.g.initializer(name, await this.weight(name, shape), shape, DataType.FLOAT);
  }

  /**
   *   x (.., in) --MatMul(W^T)--> (.., out) [--Add(bias)-->]
   * or, int4: x --MatMulNBits(B, scales, zero_points)--> [--Add(bias)-->]
   */
  async makeLinear(
    node: string,
    prefix: string,
    x: string,
    inFeatures: number,
    outFeatures: number,
    options: { bias: boolean; format?: LinearFormat },
  ): Promise<string> {
    const w = await this.weight(`${prefix}.weight`, [outFeatures, inFeatures]);
    let y: string;
    if ((options.format ?? 'fp32') === 'int4') {
      const q = quantize4(w, outFeatures, inFeatures, INT4_BLOCK_SIZE);
      const b = this.g.initializer(`${prefix}.weight.int4`, q.packed, [outFeatures, q.blocks, INT4_BLOCK_SIZE / 2], DataType.UINT8);
      const scales = this.g.initializer(`${prefix}.weight.scales`, q.scales, [outFeatures * q.blocks], DataType.FLOAT);
      const zp = this.g.initializer(`${prefix}.weight.zero_points`, q.zeroPoints, [q.zeroPoints.length], DataType.UINT8);
      [y] = this.g.node('MatMulNBits', `${node}/MatMulNBits`, [x, b, scales, zp], {
        K: attr.i(inFeatures),
        N: attr.i(outFeatures),
        bits: attr.i(4),
        block_size: attr.i(INT4_BLOCK_SIZE),
        accuracy_level: attr.i(4), // int8 activations: ~3.5x faster decode on CPU (onnxruntime-node note)
      }, { domain: MS_DOMAIN }) as [string];
    } else {
      const t = this.g.initializer(`${prefix}.weight.T`, transpose(w, outFeatures, inFeatures), [inFeatures, outFeatures], DataType.FLOAT);
      [y] = this.g.node('MatMul', `${node}/MatMul`, [x, t]) as [string];
    }
    if (!options.bias) return y;
    const bias = await this.tensor(`${prefix}.bias`, [outFeatures]);
    return this.g.node('Add', `${node}/Add`, [y, bias])[0]!;
  }

  /** LayerNormalization over the last axis (CLIP). */
  async makeLayerNorm(node: string, prefix: string, x: string, width: number, eps: number): Promise<string> {
    const gamma = await this.tensor(`${prefix}.weight`, [width]);
    const beta = await this.tensor(`${prefix}.bias`, [width]);
    return this.g.node('LayerNormalization', `${node}/LayerNorm`, [x, gamma, beta], { axis: attr.i(-1), epsilon: attr.f(eps) })[0]!;
  }

  /** gelu (exact, erf) or quick_gelu (x sigmoid(1.702 x)), the two activations LLaVA's towers use. */
  makeActivation(node: string, x: string, act: 'gelu' | 'quick_gelu'): string {
    if (act === 'gelu') return this.g.node('Gelu', `${node}/Gelu`, [x], { approximate: attr.s('none') })[0]!;
    return this.g.node('QuickGelu', `${node}/QuickGelu`, [x], { alpha: attr.f(1.702) }, { domain: MS_DOMAIN })[0]!;
  }
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

/** (rows, cols) -> (cols, rows). */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}
