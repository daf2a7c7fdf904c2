/**
 * Reading Hugging Face safetensors checkpoints, single-file or sharded
 * (model.safetensors.index.json), one tensor at a time: a 14 GB checkpoint is never in memory.
 * Every header is validated before a byte of tensor data is trusted.
 *
 * Format: u64 little-endian header length n, n bytes of JSON
 * { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }, then the data;
 * offsets are relative to the first byte after the header.
 */
import { UserError } from '../common/errors';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { bfloat16sToFloats, halfsToFloats } from '../common/float16';

export type StoredDtype = 'F32' | 'F16' | 'BF16';

const BYTES: Record<StoredDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const KNOWN_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2']);

/** Headers above this are refused: real ones are well under a megabyte. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

export class CheckpointError extends UserError {
  override readonly name = 'CheckpointError';
}

export interface TensorEntry {
  readonly name: string;
  readonly dtype: StoredDtype;
  readonly shape: readonly number[];
  readonly file: string;
  /** Absolute byte range in `file`. */
  readonly begin: number;
  readonly end: number;
}

/** Parses and checks one file's header: offsets inside the file, sizes matching shapes, no overlaps. */
export async function readSafetensorsHeader(file: string): Promise<TensorEntry[]> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw new CheckpointError(`cannot open ${file}: ${(e as Error).message}`);
  }
  try {
    const size = (await handle.stat()).size;
    const where = basename(file);
    if (size < 8) throw new CheckpointError(`${where} is too short to be a safetensors file (${size} bytes)`);
    const lenBuf = Buffer.alloc(8);
    await handle.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
      throw new CheckpointError(
        `${where}: header length ${headerLen} does not fit a ${size}-byte file; the file is truncated or not safetensors`,
      );
    }
    const headerBuf = Buffer.alloc(headerLen);
    await handle.read(headerBuf, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      throw new CheckpointError(`${where}: the header is not valid JSON; the file is damaged`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new CheckpointError(`${where}: the header is not a JSON object`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    const entries: TensorEntry[] = [];
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      entries.push(checkEntry(name, raw, where, file, dataStart, dataLen));
    }
    const sorted = [...entries].sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.begin < sorted[i - 1]!.end) {
        throw new CheckpointError(`${where}: tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap; the header is corrupt`);
      }
    }
    return entries;
  } finally {
    await handle.close();
  }
}

function checkEntry(name: string, raw: unknown, where: string, file: string, dataStart: number, dataLen: number): TensorEntry {
  const bad = (why: string): CheckpointError => new CheckpointError(`${where}: tensor ${name}: ${why}`);
  if (typeof raw !== 'object' || raw === null) throw bad('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !KNOWN_DTYPES.has(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!(dtype in BYTES)) throw bad(`dtype ${dtype} is not supported (F32, F16 and BF16 are)`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad('shape must be a list of whole numbers');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad('data_offsets must be [begin, end]');
  }
  const [b, e] = offsets as [number, number];
  const elements = (shape as number[]).reduce((p, d) => p * d, 1);
  const expected = elements * BYTES[dtype as StoredDtype];
  if (e < b || e - b !== expected)
    throw bad(`data_offsets [${b}, ${e}] hold ${e - b} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${expected}`);
  if (e > dataLen) throw bad(`data_offsets end at ${e}, past the end of the data (${dataLen} bytes): the file is truncated`);
  return { name, dtype: dtype as StoredDtype, shape: shape as number[], file, begin: dataStart + b, end: dataStart + e };
}

/** All tensors of a checkpoint folder: model.safetensors, or the shards its index names. */
export class SafetensorsCheckpoint {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  private constructor(
    readonly dir: string,
    private readonly entries: ReadonlyMap<string, TensorEntry>,
  ) {}

  static async open(dir: string): Promise<SafetensorsCheckpoint> {
    const root = resolve(dir);
    const index = join(root, 'model.safetensors.index.json');
    const single = join(root, 'model.safetensors');
    let files: string[];
    if (await exists(index)) {
      files = await shardFiles(root, index);
    } else if (await exists(single)) {
      files = [single];
    } else {
      throw new CheckpointError(
        `${dir} has neither model.safetensors nor model.safetensors.index.json (PyTorch .bin checkpoints are not supported: convert them to safetensors)`,
      );
    }
    const entries = new Map<string, TensorEntry>();
    for (const file of files) {
      for (const entry of await readSafetensorsHeader(file)) {
        if (entries.has(entry.name)) throw new CheckpointError(`tensor ${entry.name} appears in two shards`);
        entries.set(entry.name, entry);
      }
    }
    return new SafetensorsCheckpoint(root, entries);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): TensorEntry | undefined {
    return this.entries.get(name);
  }

  /** Bytes of tensor data in the checkpoint. */
  totalBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.end - e.begin;
    return n;
  }

  /** One tensor as float32, whatever it is stored as. */
  async read(name: string): Promise<Float32Array> {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(`the checkpoint has no tensor ${name}`);
    const bytes = e.end - e.begin;
    const buf = Buffer.allocUnsafe(bytes);
    const handle = await this.handle(e.file);
    let done = 0;
    while (done < bytes) {
      const { bytesRead } = await handle.read(buf, done, bytes - done, e.begin + done);
      if (bytesRead === 0) throw new CheckpointError(`${basename(e.file)} ended inside tensor ${name}: the file is truncated`);
      done += bytesRead;
    }
    // a fresh aligned copy: Buffer.allocUnsafe may hand out a pooled, unaligned slice
    const aligned = new Uint8Array(bytes);
    aligned.set(buf);
    if (e.dtype === 'F32') return new Float32Array(aligned.buffer);
    const halves = new Uint16Array(aligned.buffer);
    return e.dtype === 'F16' ? halfsToFloats(halves) : bfloat16sToFloats(halves);
  }

  private handle(file: string): Promise<FileHandle> {
    let h = this.handles.get(file);
    if (!h) {
      h = open(file, 'r');
      this.handles.set(file, h);
    }
    return h;
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map(async (h) => (await h).close()));
  }
}

async function shardFiles(root: string, index: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(index, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null) throw new CheckpointError('model.safetensors.index.json has no weight_map');
  const files = new Set<string>();
  for (const shard of Object.values(map as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw new CheckpointError('model.safetensors.index.json: weight_map values must be file names');
    const path = resolve(root, shard);
    if (!path.startsWith(root + sep))
      throw new CheckpointError(`model.safetensors.index.json points outside the checkpoint folder: ${shard}`);
    files.add(path);
  }
  for (const f of files) {
    if (!(await exists(f))) throw new CheckpointError(`shard ${basename(f)} named by model.safetensors.index.json is missing`);
  }
  return [...files].sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
