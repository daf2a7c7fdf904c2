/**
 * The blocks graphs are made of, one make* per block as in onnxruntime-genai's builder. Weights
 * are read from the source under their Hugging Face names and stored under the same names.
 */
import { attr, DataType, GraphBuilder, MS_DOMAIN } from './onnxGraph';
import { floatsToHalfs } from '../common/float16';
import { Int8WeightBits, QuantBits, quantize, quantizePerChannel } from './quantize';
import { readWeight, WeightSource } from '../checkpoint/weights';

/**
 * How linear-layer weights are stored: as the graph's floats, 4-bit blocks for MatMulNBits, or
 * int8 per output channel for DynamicQuantizeMatMul (activations quantised to uint8 as it runs).
 */
export type LinearFormat = 'float' | 'int4' | 'int8';

/**
 * MatMulNBits' accuracy_level, by what the layer computes: the language model decodes one row at
 * a time, where int8 activations (4) decode faster; the vision tower multiplies hundreds of rows at
 * once, where float32 arithmetic on dequantised blocks (1) was fastest and kept PruMerge's choices
 * best (docs/onnxruntime-node.md, docs/benchmarks.md).
 */
export type NBitsUse = 'decode' | 'encode';
const ACCURACY_LEVEL: Record<NBitsUse, number> = { decode: 4, encode: 1 };

/** The floats a graph computes in: float32, or float16 end to end (for GPUs) with float32 at its edges. */
export type Precision = 'fp32' | 'fp16';

/**
 * MatMulNBits block sizes: each block of weights along K shares a scale and a zero point. Smaller
 * blocks follow the weights more closely; larger ones hold fewer scales, which onnxruntime keeps
 * twice over (in the file and with its packed weights) and reads for every token.
 */
export const BLOCK_SIZES = [32, 64, 128] as const;
export type BlockSize = (typeof BLOCK_SIZES)[number];
/** The vision tower's quantised layers (its accuracy was measured at 32, docs/onnxruntime-node.md). */
export const VISION_BLOCK_SIZE: BlockSize = 32;

export class Ops {
  /** The element type of weights and activations inside the graph. */
  readonly floatType: DataType;
  /** Vision towers only: every encoder layer's input becomes a graph output too (the int8 check reads them). */
  tapLayerInputs = false;

  constructor(
    readonly g: GraphBuilder,
    private readonly weights: WeightSource,
    readonly precision: Precision = 'fp32',
    /** MatMulNBits' block size, for the layers this Ops quantises. */
    readonly blockSize: BlockSize = VISION_BLOCK_SIZE,
    /** The int8 format's weight range: 7 bits where the CPU's u8 x s8 kernel would saturate. */
    readonly int8Bits: Int8WeightBits = 8,
  ) {
    this.floatType = precision === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
  }

  /** Values in the graph's float type (half bits for fp16). */
  floats(data: Float32Array): Float32Array | Uint16Array {
    return this.precision === 'fp16' ? floatsToHalfs(data) : data;
  }

  /** A float32 graph input brought to the graph's float type. */
  fromFloat32(node: string, x: string): string {
    if (this.precision === 'fp32') return x;
    return this.g.node('Cast', `${node}/Cast`, [x], { to: attr.i(DataType.FLOAT16) })[0]!;
  }

  /** Makes `x` the graph output `name`, as float32. */
  output(node: string, x: string, name: string, dims: readonly (number | string)[]): void {
    if (this.precision === 'fp32') this.g.node('Identity', node, [x], {}, { outputs: [name] });
    else this.g.node('Cast', `${node}/Cast`, [x], { to: attr.i(DataType.FLOAT) }, { outputs: [name] });
    this.g.output(name, DataType.FLOAT, dims);
  }

  weight(name: string, shape: readonly number[]): Promise<Float32Array> {
    return readWeight(this.weights, name, shape);
  }

  /** An initializer straight from the checkpoint, in the graph's float type. */
  async tensor(name: string, shape: readonly number[], storedShape: readonly number[] = shape): Promise<string> {
    return this.g.initializer(name, this.floats(await this.weight(name, shape)), storedShape, this.floatType);
  }

  /**
   *   x (.., in) --MatMul(W^T)--> (.., out) [--Add(bias)-->]
   * or, int4: x --MatMulNBits(B, scales, zero_points)--> [--Add(bias)-->]
   * or, int8: x --DynamicQuantizeMatMul(B, b_scale, -, bias)-->
   */
  async makeLinear(
    node: string,
    prefix: string,
    x: string,
    inFeatures: number,
    outFeatures: number,
    options: { bias: boolean; format?: LinearFormat; use?: NBitsUse },
  ): Promise<string> {
    const w = await this.weight(`${prefix}.weight`, [outFeatures, inFeatures]);
    let y: string;
    if ((options.format === 'int4' || options.format === 'int8') && this.precision !== 'fp32')
      throw new Error(`${options.format} weights take float32 activations`);
    if (options.format === 'int8') {
      const bias = options.bias ? await this.tensor(`${prefix}.bias`, [outFeatures]) : '';
      return this.dynamicQuantizeMatMul(node, prefix, x, w, inFeatures, outFeatures, bias);
    }
    if (options.format === 'int4') {
      y = this.matMulNBits(node, prefix, x, w, { k: inFeatures, n: outFeatures, bits: 4, use: options.use ?? 'decode' });
    } else {
      const t = this.g.initializer(
        `${prefix}.weight.T`,
        this.floats(transpose(w, outFeatures, inFeatures)),
        [inFeatures, outFeatures],
        this.floatType,
      );
      [y] = this.g.node('MatMul', `${node}/MatMul`, [x, t]) as [string];
    }
    if (!options.bias) return y;
    const bias = await this.tensor(`${prefix}.bias`, [outFeatures]);
    return this.g.node('Add', `${node}/Add`, [y, bias])[0]!;
  }

  /** x W^T + bias with W int8 per output channel: com.microsoft.DynamicQuantizeMatMul, bias fused. */
  private dynamicQuantizeMatMul(node: string, prefix: string, x: string, w: Float32Array, k: number, n: number, bias: string): string {
    const q = quantizePerChannel(w, n, k, this.int8Bits);
    const b = this.g.initializer(`${prefix}.weight.int8`, q.data, [k, n], DataType.INT8);
    const scales = this.g.initializer(`${prefix}.weight.scales`, q.scales, [n], DataType.FLOAT);
    const inputs = bias ? [x, b, scales, '', bias] : [x, b, scales];
    return this.g.node('DynamicQuantizeMatMul', `${node}/DynamicQuantizeMatMul`, inputs, {}, { domain: MS_DOMAIN })[0]!;
  }

  /** x W^T with W in 4- or 8-bit blocks: com.microsoft.MatMulNBits. */
  private matMulNBits(
    node: string,
    prefix: string,
    x: string,
    w: Float32Array,
    m: { k: number; n: number; bits: QuantBits; use: NBitsUse },
  ): string {
    const q = quantize(w, m.n, m.k, m.bits, this.blockSize);
    const b = this.g.initializer(`${prefix}.weight.int${m.bits}`, q.packed, [m.n, q.blocks, (this.blockSize * m.bits) / 8], DataType.UINT8);
    const scales = this.g.initializer(`${prefix}.weight.scales`, q.scales, [m.n * q.blocks], DataType.FLOAT);
    const zp = this.g.initializer(`${prefix}.weight.zero_points`, q.zeroPoints, [q.zeroPoints.length], DataType.UINT8);
    return this.g.node(
      'MatMulNBits',
      `${node}/MatMulNBits`,
      [x, b, scales, zp],
      {
        K: attr.i(m.k),
        N: attr.i(m.n),
        bits: attr.i(m.bits),
        block_size: attr.i(this.blockSize),
        accuracy_level: attr.i(ACCURACY_LEVEL[m.use]),
      },
      { domain: MS_DOMAIN },
    )[0]!;
  }

  /** LayerNormalization over the last axis (CLIP). */
  async makeLayerNorm(node: string, prefix: string, x: string, width: number, eps: number): Promise<string> {
    const gamma = await this.tensor(`${prefix}.weight`, [width]);
    const beta = await this.tensor(`${prefix}.bias`, [width]);
    return this.g.node('LayerNormalization', `${node}/LayerNorm`, [x, gamma, beta], { axis: attr.i(-1), epsilon: attr.f(eps) })[0]!;
  }

  /** gelu (exact, erf), gelu_pytorch_tanh (its tanh approximation, SigLIP) or quick_gelu (x sigmoid(1.702 x)). */
  makeActivation(node: string, x: string, act: 'gelu' | 'quick_gelu' | 'gelu_pytorch_tanh'): string {
    if (act === 'gelu') return this.g.node('Gelu', `${node}/Gelu`, [x], { approximate: attr.s('none') })[0]!;
    if (act === 'gelu_pytorch_tanh') return this.g.node('Gelu', `${node}/Gelu`, [x], { approximate: attr.s('tanh') })[0]!;
    return this.g.node('QuickGelu', `${node}/QuickGelu`, [x], { alpha: attr.f(1.702) }, { domain: MS_DOMAIN })[0]!;
  }
}

/** (rows, cols) -> (cols, rows). */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}
