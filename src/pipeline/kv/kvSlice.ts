/**
 * Cutting a KV cache that lives on the GPU. onnxruntime-node cannot download a tensor that a
 * WebGPU session left on the GPU (`getData()` aborts the process: docs/onnxruntime-node.md), so
 * a follow-up that reuses a shorter prefix keeps the first positions with a one-node graph on the
 * same provider: Slice along the positions axis, GPU buffer in, GPU buffer out.
 */
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';

const POSITIONS_AXIS = 2; // (1, kv heads, positions, head dim)

function int64(name: string, value: number): onnx.ITensorProto {
  return {
    name,
    dataType: onnx.TensorProto.DataType.INT64,
    dims: [1],
    rawData: new Uint8Array(BigInt64Array.of(BigInt(value)).buffer),
  };
}

/** y = x[:, :, :ends] for a cache tensor of `dtype`. */
function sliceModel(dtype: 'float32' | 'float16'): Uint8Array {
  const elemType = dtype === 'float16' ? onnx.TensorProto.DataType.FLOAT16 : onnx.TensorProto.DataType.FLOAT;
  const model: onnx.IModelProto = {
    irVersion: 10,
    producerName: 'prumerge-vision',
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'kv_slice',
      node: [{ opType: 'Slice', name: 'slice', input: ['x', 'starts', 'ends', 'axes'], output: ['y'] }],
      initializer: [int64('starts', 0), int64('axes', POSITIONS_AXIS)],
      input: [
        { name: 'x', type: { tensorType: { elemType } } },
        { name: 'ends', type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimValue: 1 }] } } } },
      ],
      output: [{ name: 'y', type: { tensorType: { elemType } } }],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export type KvSlicer = (t: ort.Tensor, length: number) => Promise<ort.Tensor>;

/** A slicer on `ep` whose outputs stay on the GPU; the session is opened at the first cut. */
export function gpuKvSlicer(ep: 'webgpu', dtype: 'float32' | 'float16'): KvSlicer & { release(): Promise<void> } {
  let session: Promise<ort.InferenceSession> | undefined;
  const slicer = async (t: ort.Tensor, length: number): Promise<ort.Tensor> => {
    session ??= ort.InferenceSession.create(sliceModel(dtype), { executionProviders: [ep], preferredOutputLocation: 'gpu-buffer' });
    const out = await (await session).run({ x: t, ends: new ort.Tensor('int64', BigInt64Array.of(BigInt(length)), [1]) });
    return out['y']!;
  };
  return Object.assign(slicer, { release: async () => (session ? (await session).release() : undefined) });
}
