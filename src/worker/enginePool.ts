/**
 * The engines one worker holds: one per (model folder, provider, threads), so that windows that
 * use different models do not reload each other's on every question. An engine is unloaded only
 * while nothing runs or waits on it, least recently used first, and only to make room: a new
 * model is loaded once the machine's free memory (MemAvailable on Linux) covers its folder's size
 * with a margin, as far as unloading idle engines allows; where it cannot, it loads anyway.
 */

export interface PooledEngine {
  /** Requests waiting or running on it. */
  readonly pending: number;
  dispose(): Promise<void>;
}

export interface PoolOptions<S, E extends PooledEngine> {
  readonly key: (spec: S) => string;
  readonly open: (spec: S) => Promise<E>;
  /** Bytes the model takes on disk (its memory is about that: docs/benchmarks.md, "Memory"). */
  readonly sizeOf: (spec: S) => Promise<number>;
  /** The machine's free memory now, bytes. */
  readonly freeBytes: () => number;
}

/** Memory a loaded model takes per byte of its folder, with room to spare over the peak measured (docs/benchmarks.md, "Memory"). */
export const MEMORY_PER_FOLDER_BYTE = 1.25;

interface Entry<E> {
  readonly key: string;
  readonly engine: Promise<E>;
}

export class EnginePool<S, E extends PooledEngine> {
  /** Least recently used first. */
  private readonly entries = new Map<string, Entry<E>>();

  constructor(private readonly options: PoolOptions<S, E>) {}

  /** The engine for `spec`, loading it (and unloading idle ones to make room) the first time. */
  get(spec: S): Promise<E> {
    const key = this.options.key(spec);
    const found = this.entries.get(key);
    if (found) {
      this.entries.delete(key); // most recently used last
      this.entries.set(key, found);
      return found.engine;
    }
    const entry: Entry<E> = { key, engine: this.load(spec, key) };
    this.entries.set(key, entry);
    entry.engine.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key); // the next request tries again
    });
    return entry.engine;
  }

  private async load(spec: S, key: string): Promise<E> {
    await this.makeRoom((await this.options.sizeOf(spec)) * MEMORY_PER_FOLDER_BYTE, key);
    return this.options.open(spec);
  }

  /** Unloads idle engines, least recently used first, until `needed` bytes fit in free memory (read again after each). */
  private async makeRoom(needed: number, except: string): Promise<void> {
    for (const entry of [...this.entries.values()]) {
      if (this.options.freeBytes() >= needed) return;
      if (entry.key === except) continue;
      const engine = await settled(entry.engine);
      if (!engine || engine.pending > 0 || this.entries.get(entry.key) !== entry) continue;
      this.entries.delete(entry.key);
      await engine.dispose();
    }
  }

  /** Keys of the engines loaded or loading, least recently used first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Every engine that loaded. */
  async loaded(): Promise<E[]> {
    const all: (E | undefined)[] = await Promise.all([...this.entries.values()].map((e) => settled(e.engine)));
    return all.filter((e): e is E => e !== undefined);
  }
}

/** The engine, or undefined where its load failed; waits for a load in progress. */
async function settled<E>(p: Promise<E>): Promise<E | undefined> {
  return p.catch(() => undefined);
}
