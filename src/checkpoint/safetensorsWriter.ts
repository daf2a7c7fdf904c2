/** Writes safetensors files, for the tiny random checkpoints that tests and the demo model use. */
import { writeFile } from 'node:fs/promises';
import { floatsToHalfs } from '../common/float16';
import { StoredDtype } from './safetensors';

export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Tensors are stored in the given order; F16 / BF16 round from float32. */
export async function writeSafetensors(path: string, tensors: readonly NamedTensor[], dtype: StoredDtype = 'F32'): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = encode(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // the reference writer pads to 8 bytes
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  await writeFile(path, Buffer.concat([len, Buffer.from(json), ...parts]));
}

function encode(data: Float32Array, dtype: StoredDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'F16') return new Uint8Array(floatsToHalfs(data).buffer);
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16; // round to nearest even
  return new Uint8Array(out.buffer);
}
