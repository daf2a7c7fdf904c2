/**
 * The vision tower's outputs per crop, kept in memory so that the same pixels never run through
 * the tower twice: a re-ask, a new chat on the same image, Compare, the heatmap and its export,
 * VS Code's chat resending the image. Keyed by a hash of the crop's model input, so a changed
 * file, another crop or another preprocessing is another key; one cache per loaded model, so an
 * unloaded model's entries go with it. Least recently used entries go first once the bound is
 * reached; nothing is written to disk.
 */
import { createHash } from 'node:crypto';
import type { TowerTaps } from '../reduce/visionTaps';

/** Default bound: about 35 crops of SigLIP-so400m or CLIP ViT-L (7 MB each), five tiled screenshots. */
export const DEFAULT_VISION_CACHE_BYTES = 256 * 2 ** 20;

export function cropKey(pixels: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength))
    .digest('hex');
}

function bytesOf(taps: TowerTaps): number {
  const arrays = 'received' in taps ? [taps.hidden, taps.k, taps.received] : [taps.hidden, taps.q, taps.k];
  return arrays.reduce((n, a) => n + a.byteLength, 0);
}

export class VisionCache {
  /** Insertion order is recency order: a hit moves its entry to the end. */
  private readonly entries = new Map<string, { taps: TowerTaps; bytes: number }>();
  private held = 0;
  hits = 0;
  misses = 0;

  constructor(private bound = DEFAULT_VISION_CACHE_BYTES) {}

  get maxBytes(): number {
    return this.bound;
  }

  /** A new bound (the setting changed): the least recently used go until the rest fits. */
  set maxBytes(bytes: number) {
    this.bound = bytes;
    this.evictTo(bytes);
  }

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): TowerTaps | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.taps;
  }

  /** Keeps `taps` unless they alone exceed the bound; evicts the least recently used to make room. */
  set(key: string, taps: TowerTaps): void {
    const bytes = bytesOf(taps);
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.held -= old.bytes;
    }
    if (bytes > this.bound) return;
    this.evictTo(this.bound - bytes);
    this.entries.set(key, { taps, bytes });
    this.held += bytes;
  }

  private evictTo(limit: number): void {
    for (const [k, e] of this.entries) {
      if (this.held <= limit) break;
      this.entries.delete(k);
      this.held -= e.bytes;
    }
  }

  clear(): void {
    this.entries.clear();
    this.held = 0;
  }
}
