/**
 * A small layer over the ONNX protobuf (onnx-proto) for writing graphs: typed inputs and outputs,
 * nodes named by where they sit (`/model/layers.0/attn/q_proj/MatMul`, outputs `{node}/output_0`,
 * as onnxruntime-genai's builder names them), weights streamed to an external data file beside
 * the .onnx as they are added, so that a 7B model never sits in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { onnx } from 'onnx-proto';

export const DataType = onnx.TensorProto.DataType;
export type DataType = onnx.TensorProto.DataType;

export type Dim = number | string;

/** Typed attribute values: ONNX distinguishes INT from FLOAT, JavaScript numbers do not. */
export type Attr =
  | { readonly f: number }
  | { readonly i: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] };

export const attr = {
  f: (f: number): Attr => ({ f }),
  i: (i: number): Attr => ({ i }),
  s: (s: string): Attr => ({ s }),
  ints: (ints: readonly number[]): Attr => ({ ints }),
  floats: (floats: readonly number[]): Attr => ({ floats }),
};

/** Default-domain opset: LayerNormalization (17), Gelu (20); 21 loads in onnxruntime-node 1.30. */
export const OPSET = 21;
export const MS_DOMAIN = 'com.microsoft';

/** Initializers at least this large go to the external data file; smaller ones stay inline. */
const EXTERNAL_MIN_BYTES = 1024;
/** Large tensors start on a page boundary, so that onnxruntime can map them without copying. */
const PAGE = 4096;

export type TensorData = Float32Array | Uint16Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly constants = new Map<string, string>();
  private readonly names = new Set<string>();
  private readonly dataFd: number;
  private dataOffset = 0;
  /** Bytes of weights written so far. */
  bytesWritten = 0;

  /**
   * @param dataPath the external data file, created (or truncated) now; the .onnx that refers to
   *   it must be saved in the same folder
   */
  constructor(
    private readonly graphName: string,
    private readonly dataPath: string,
  ) {
    this.dataFd = openSync(dataPath, 'w');
  }

  input(name: string, type: DataType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: DataType, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Adds a weight under `name` (a Hugging Face name where there is one) and returns the name. */
  initializer(name: string, data: TensorData, dims: readonly number[], type: DataType): string {
    this.claim(name);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const tensor: onnx.ITensorProto = { name, dims: [...dims], dataType: type };
    if (bytes.length < EXTERNAL_MIN_BYTES) {
      tensor.rawData = bytes.slice();
    } else {
      const align = bytes.length >= 2 ** 20 ? PAGE : 64;
      const offset = Math.ceil(this.dataOffset / align) * align;
      writeFully(this.dataFd, bytes, offset);
      this.dataOffset = offset + bytes.length;
      this.bytesWritten += bytes.length;
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: basename(this.dataPath) },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ];
    }
    this.initializers.push(tensor);
    return name;
  }

  /** An int64 constant, made once per value and reused (shapes, axes). */
  int64s(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `/constants/INT64_${values.join('_').replace(/-/g, 'm')}`;
      this.initializer(name, BigInt64Array.from(values.map(BigInt)), [values.length], DataType.INT64);
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float scalar constant (shape []), made once per value. */
  float(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `/constants/FLOAT_${this.constants.size}`;
      this.initializer(name, Float32Array.of(value), [], DataType.FLOAT);
      this.constants.set(key, name);
    }
    return name;
  }

  /**
   * Adds a node named `name`; returns its outputs, `{name}/output_{k}`. An empty string in
   * `inputs` is an omitted optional input.
   */
  node(
    opType: string,
    name: string,
    inputs: readonly string[],
    attributes: Record<string, Attr> = {},
    options: { domain?: string; outputs?: number | readonly string[] } = {},
  ): string[] {
    this.claim(name);
    const outputs = Array.isArray(options.outputs)
      ? [...options.outputs]
      : Array.from({ length: (options.outputs as number | undefined) ?? 1 }, (_, k) => `${name}/output_${k}`);
    this.nodes.push({
      opType,
      name,
      domain: options.domain ?? '',
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** Writes the .onnx (the data file is already complete) and closes the data file. */
  async save(onnxPath: string, docString = ''): Promise<void> {
    closeSync(this.dataFd);
    const model: onnx.IModelProto = {
      irVersion: 10,
      producerName: 'prumerge-vision',
      docString,
      opsetImport: [
        { domain: '', version: OPSET },
        { domain: MS_DOMAIN, version: 1 },
      ],
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
    await writeFile(onnxPath, onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish());
  }

  /** Closes the data file without saving (on failure). */
  abandon(): void {
    try {
      closeSync(this.dataFd);
    } catch {
      // already closed
    }
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`graph ${this.graphName}: the name ${name} is used twice`);
    this.names.add(name);
  }
}

function valueInfo(name: string, type: DataType, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: type,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('f' in value) return { name, type: T.FLOAT, f: value.f };
  if ('i' in value) return { name, type: T.INT, i: value.i };
  if ('s' in value) return { name, type: T.STRING, s: Buffer.from(value.s) };
  if ('ints' in value) return { name, type: T.INTS, ints: [...value.ints] };
  return { name, type: T.FLOATS, floats: [...value.floats] };
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
