/**
 * The token embedding table (vocab, hidden) float32, read a row at a time from embed_tokens.bin:
 * a 7B model's table is 0.5 GB, and a prompt needs a few hundred rows of it.
 */
import { open, type FileHandle } from 'node:fs/promises';

export class EmbeddingTable {
  private constructor(
    private readonly file: FileHandle,
    readonly vocabSize: number,
    readonly hiddenSize: number,
  ) {}

  static async open(path: string, vocabSize: number, hiddenSize: number): Promise<EmbeddingTable> {
    const file = await open(path, 'r');
    const { size } = await file.stat();
    if (size !== vocabSize * hiddenSize * 4) {
      await file.close();
      throw new Error(`${path} is ${size} bytes; a float32 table of ${vocabSize} x ${hiddenSize} is ${vocabSize * hiddenSize * 4}`);
    }
    return new EmbeddingTable(file, vocabSize, hiddenSize);
  }

  /** Writes the rows of `ids` into out[offsetRow ...], (ids.length, hidden). */
  async lookup(ids: ArrayLike<number>, out: Float32Array, offsetRow = 0): Promise<void> {
    const rowBytes = this.hiddenSize * 4;
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new Error(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      await this.file.read(bytes, (offsetRow + i) * rowBytes, rowBytes, id * rowBytes);
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
