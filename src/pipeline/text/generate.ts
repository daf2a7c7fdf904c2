/**
 * The small pieces of generation: choosing the next token, noticing a loop, and turning token ids
 * into text as they come without ever emitting half a character.
 */
import { SeededRandom } from '../../common/random';

export interface SamplingOptions {
  /** 0: greedy (the default, reproducible). */
  readonly temperature: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches topP. */
  readonly topP: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** Greedy at temperature 0; otherwise softmax(logits / T) restricted to the top-p nucleus. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, rng: SeededRandom): number {
  // NaN or top-p <= 0 would pick no token at all
  if (!(options.temperature >= 0)) throw new RangeError(`temperature must be 0 or more, got ${options.temperature}`);
  if (options.temperature === 0) return argmax(logits);
  if (!(options.topP > 0 && options.topP <= 1)) throw new RangeError(`top-p must be above 0 and at most 1, got ${options.topP}`);
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  const max = logits[ids[0]!]!;
  const weights = ids.map((id) => Math.exp((logits[id]! - max) / options.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let kept = 0;
  let mass = 0;
  while (kept < ids.length && mass < options.topP * total) mass += weights[kept++]!;
  let r = rng.uniform() * mass;
  for (let i = 0; i < kept; i++) {
    r -= weights[i]!;
    if (r <= 0) return ids[i]!;
  }
  return ids[kept - 1]!;
}

/**
 * Stops degenerate output: true once the last `span` tokens have repeated `times` times in a row
 * for some span up to `maxSpan` (a word, a phrase, a line said over and over).
 */
export class RepetitionGuard {
  private readonly ids: number[] = [];

  constructor(
    private readonly times = 4,
    private readonly maxSpan = 16,
  ) {}

  push(id: number): boolean {
    this.ids.push(id);
    const n = this.ids.length;
    for (let span = 1; span <= this.maxSpan && span * this.times <= n; span++) {
      let repeated = true;
      for (let k = 1; k < this.times && repeated; k++) {
        for (let j = 0; j < span; j++) {
          if (this.ids[n - 1 - j] !== this.ids[n - 1 - j - k * span]) {
            repeated = false;
            break;
          }
        }
      }
      if (repeated) return true;
    }
    return false;
  }
}

/**
 * Incremental detokenisation: decodes all ids so far and hands out only the new text, holding it
 * back while it ends in U+FFFD (a multi-byte character whose bytes have not all arrived).
 */
export class TextStreamer {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** Adds a token; returns the text that is now certain (possibly ''). */
  put(id: number): string {
    this.ids.push(id);
    const text = this.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    return this.take(text);
  }

  /** Everything not yet handed out, whatever it ends with. */
  end(): string {
    return this.take(this.decode(this.ids));
  }

  private take(text: string): string {
    // a later token can change how earlier ones decode (a leading space dropped); only append
    const delta = text.length > this.emitted ? text.slice(this.emitted) : '';
    this.emitted = Math.max(this.emitted, text.length);
    return delta;
  }
}
