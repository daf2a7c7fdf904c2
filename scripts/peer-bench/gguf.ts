/**
 * A synthetic LLaMA checkpoint as GGUF v3 with Q4_0 weights, for timing llama.cpp at the shape of
 * our synthetic models without a download. Values are random (Q4_0 nibbles, scales 0.002-0.02),
 * so answers are meaningless; only the shapes and the arithmetic count. Layout as in ggml's
 * docs/gguf.md: header, key/value metadata, tensor infos (dimensions innermost first), then the
 * tensor data, each tensor aligned to 32 bytes.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';

export interface LlamaShape {
  readonly vocab: number;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly ffn: number;
  readonly context: number;
  readonly ropeTheta: number;
}

const ALIGN = 32;
const GGML_F32 = 0;
const GGML_Q4_0 = 2;
/** general.file_type: LLAMA_FTYPE_MOSTLY_Q4_0 */
const FTYPE_Q4_0 = 2;
const enum Kind {
  U32 = 4,
  I32 = 5,
  F32 = 6,
  String = 8,
  Array = 9,
}

type Value =
  | { kind: Kind.U32 | Kind.I32 | Kind.F32; v: number }
  | { kind: Kind.String; v: string }
  | { kind: Kind.Array; of: Kind; v: readonly (number | string)[] };

class Bytes {
  private readonly parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(kind: Kind, v: number | string): void {
    const b = Buffer.alloc(4);
    if (kind === Kind.String) return this.str(v as string);
    if (kind === Kind.U32) b.writeUInt32LE(v as number);
    else if (kind === Kind.I32) b.writeInt32LE(v as number);
    else b.writeFloatLE(v as number);
    this.push(b);
  }
  concat(): Buffer {
    return Buffer.concat(this.parts);
  }
}

interface TensorInfo {
  readonly name: string;
  /** ggml order: the innermost (row) dimension first. */
  readonly ne: readonly number[];
  readonly type: number;
}

function bytesOf(t: TensorInfo): number {
  const n = t.ne.reduce((a, b) => a * b, 1);
  return t.type === GGML_F32 ? 4 * n : (n / 32) * 18;
}

function tensorsOf(s: LlamaShape): TensorInfo[] {
  const q = (name: string, inner: number, outer: number): TensorInfo => ({ name, ne: [inner, outer], type: GGML_Q4_0 });
  const norm = (name: string): TensorInfo => ({ name, ne: [s.hidden], type: GGML_F32 });
  const kv = (s.hidden / s.heads) * s.kvHeads;
  const out: TensorInfo[] = [q('token_embd.weight', s.hidden, s.vocab), norm('output_norm.weight'), q('output.weight', s.hidden, s.vocab)];
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}`;
    out.push(norm(`${b}.attn_norm.weight`), q(`${b}.attn_q.weight`, s.hidden, s.hidden), q(`${b}.attn_k.weight`, s.hidden, kv));
    out.push(q(`${b}.attn_v.weight`, s.hidden, kv), q(`${b}.attn_output.weight`, s.hidden, s.hidden), norm(`${b}.ffn_norm.weight`));
    out.push(
      q(`${b}.ffn_gate.weight`, s.hidden, s.ffn),
      q(`${b}.ffn_up.weight`, s.hidden, s.ffn),
      q(`${b}.ffn_down.weight`, s.ffn, s.hidden),
    );
  }
  return out;
}

/** SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then filler pieces. */
function vocabulary(size: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // byte
  }
  while (tokens.length < size) {
    tokens.push(`▁t${tokens.length}`);
    types.push(1); // normal
  }
  return { tokens, scores: tokens.map((_, i) => -i), types };
}

function metadata(s: LlamaShape): [string, Value][] {
  const v = vocabulary(s.vocab);
  const u32 = (v: number): Value => ({ kind: Kind.U32, v });
  return [
    ['general.architecture', { kind: Kind.String, v: 'llama' }],
    ['general.name', { kind: Kind.String, v: 'prumerge-vision synthetic llama' }],
    ['general.file_type', u32(FTYPE_Q4_0)],
    ['general.alignment', u32(ALIGN)],
    ['llama.context_length', u32(s.context)],
    ['llama.embedding_length', u32(s.hidden)],
    ['llama.block_count', u32(s.layers)],
    ['llama.feed_forward_length', u32(s.ffn)],
    ['llama.rope.dimension_count', u32(s.hidden / s.heads)],
    ['llama.rope.freq_base', { kind: Kind.F32, v: s.ropeTheta }],
    ['llama.attention.head_count', u32(s.heads)],
    ['llama.attention.head_count_kv', u32(s.kvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', { kind: Kind.F32, v: 1e-5 }],
    ['tokenizer.ggml.model', { kind: Kind.String, v: 'llama' }],
    ['tokenizer.ggml.tokens', { kind: Kind.Array, of: Kind.String, v: v.tokens }],
    ['tokenizer.ggml.scores', { kind: Kind.Array, of: Kind.F32, v: v.scores }],
    ['tokenizer.ggml.token_type', { kind: Kind.Array, of: Kind.I32, v: v.types }],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
  ];
}

function header(s: LlamaShape, tensors: readonly TensorInfo[]): Buffer {
  const meta = metadata(s);
  const h = new Bytes();
  h.push(Buffer.from('GGUF', 'latin1'));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(meta.length);
  for (const [key, value] of meta) {
    h.str(key);
    h.u32(value.kind);
    if (value.kind === Kind.Array) {
      h.u32(value.of);
      h.u64(value.v.length);
      for (const x of value.v) h.scalar(value.of, x);
    } else h.scalar(value.kind, value.v);
  }
  let offset = 0;
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.ne.length);
    for (const n of t.ne) h.u64(n);
    h.u32(t.type);
    h.u64(offset);
    offset = Math.ceil((offset + bytesOf(t)) / ALIGN) * ALIGN;
  }
  const bytes = h.concat();
  return Buffer.concat([bytes, Buffer.alloc(Math.ceil(bytes.length / ALIGN) * ALIGN - bytes.length)]);
}

/** Q4_0 blocks: an fp16 scale (0.002-0.02), then 16 bytes of random nibbles. */
function q4Blocks(blocks: number, fill: Buffer): Buffer {
  const out = fill.subarray(0, blocks * 18);
  randomFillSync(out);
  for (let b = 0; b < blocks; b++) {
    // fp16 with exponent 2^-9..2^-6 (0.002..0.016) and a random mantissa
    const exp = 6 + (out[b * 18]! & 3);
    out.writeUInt16LE((exp << 10) | (out.readUInt16LE(b * 18) & 0x3ff), b * 18);
  }
  return out;
}

/** Writes the GGUF to `path` (through a temporary name); returns its size in bytes. */
export function writeSyntheticGguf(path: string, s: LlamaShape): number {
  const tensors = tensorsOf(s);
  const fd = openSync(`${path}.partial`, 'w');
  let written = 0;
  const put = (b: Buffer): void => {
    writeSync(fd, b);
    written += b.length;
  };
  try {
    put(header(s, tensors));
    const chunk = Buffer.alloc(18 * 65536);
    for (const t of tensors) {
      const start = written;
      if (t.type === GGML_F32) {
        const ones = Buffer.alloc(bytesOf(t));
        for (let i = 0; i < ones.length; i += 4) ones.writeFloatLE(1, i);
        put(ones);
      } else {
        for (let left = bytesOf(t) / 18; left > 0; left -= 65536) put(q4Blocks(Math.min(left, 65536), chunk));
      }
      const pad = Math.ceil((written - start) / ALIGN) * ALIGN - (written - start);
      if (pad) put(Buffer.alloc(pad));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(`${path}.partial`, path);
  return written;
}
