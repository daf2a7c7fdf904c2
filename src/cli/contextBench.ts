/**
 * `prumerge bench --context`: how decoding slows as the context grows. The same number of tokens
 * is generated after prompts of about 70, 600 and 2400 positions (a reduced image with a short
 * question, all visual tokens (576 for LLaVA-1.5), and all of them with a long question), in one run, so that the
 * curve is visible. Prompts longer than the model takes are left out.
 */
import { AskResult } from '../shared/results';
import { Engine } from '../pipeline/engine/engine';
import { ReduceMode } from '../shared/reduceMode';

export const CONTEXT_TARGETS = [70, 600, 2400] as const;

export interface ContextRun {
  readonly target: number;
  readonly promptTokens: number;
  readonly decodeTokensPerSecond: number;
  readonly prefillMs: number;
}

const SHORT_QUESTION = 'What is shown in this image?';
const FILLER = 'The quick brown fox jumps over the lazy dog near the river bank. ';

/**
 * The question and reduction whose prompt is closest to `target` positions, and that prompt's
 * length. `image` is the image's unreduced visual tokens and the sub-images the tower reads.
 */
function promptFor(
  engine: Engine,
  target: number,
  image: { total: number; subImages: number },
): { question: string; reduce: ReduceMode; length: number } {
  const grid = image.total;
  const patches = engine.manifest.vision.grid ** 2; // per sub-image
  const length = (question: string, slots: number): number => engine.prompt.ids([{ question }], slots).ids.length;
  const all = length(SHORT_QUESTION, grid);
  if (target < all) {
    // a fixed budget of patches per sub-image, sized to land near the target (each sub-image's remainder row adds one)
    const free = target - length(SHORT_QUESTION, 0);
    const k = Math.max(1, Math.min(patches - 1, Math.floor(free / image.subImages) - 1));
    return { question: SHORT_QUESTION, reduce: { kind: 'topk', k }, length: length(SHORT_QUESTION, image.subImages * (k + 1)) };
  }
  const perRepeat = (length(SHORT_QUESTION + ' ' + FILLER.repeat(10), grid) - all) / 10;
  const repeats = Math.max(0, Math.round((target - all) / perRepeat));
  const question = `${FILLER.repeat(repeats)}${SHORT_QUESTION}`;
  return { question, reduce: { kind: 'none' }, length: length(question, grid) };
}

/** Medians over `reps` runs (after a warm-up) of exactly `tokens` tokens after each prompt length. */
export async function benchContext(engine: Engine, image: string, reps: number, tokens: number): Promise<ContextRun[]> {
  const runs: ContextRun[] = [];
  const tokensOfImage = await engine.imageTokens(image);
  for (const target of CONTEXT_TARGETS) {
    const { question, reduce, length } = promptFor(engine, target, tokensOfImage);
    if (length + tokens >= engine.manifest.decoder.maxPositions) continue;
    const ask = (): Promise<AskResult> => {
      engine.newConversation();
      return engine.ask({ image, question, reduce, maxNewTokens: tokens, fixedLength: true });
    };
    await ask();
    const results: AskResult[] = [];
    for (let i = 0; i < reps; i++) results.push(await ask());
    runs.push({
      target,
      promptTokens: results[0]!.promptTokens,
      decodeTokensPerSecond: median(results.map((r) => r.timings.decodeTokensPerSecond)),
      prefillMs: median(results.map((r) => r.timings.prefillMs)),
    });
  }
  return runs;
}

export function contextTable(runs: readonly ContextRun[]): string[] {
  const first = runs[0]?.decodeTokensPerSecond ?? 0;
  return [
    'prompt positions   decode          prefill      decode / decode at the shortest prompt',
    ...runs.map(
      (r) =>
        `${String(r.promptTokens).padStart(16)} ${`${r.decodeTokensPerSecond.toFixed(1)} tok/s`.padStart(13)} ${`${r.prefillMs.toFixed(0)} ms`.padStart(10)} ${`${(r.decodeTokensPerSecond / first).toFixed(2)}x`.padStart(10)}`,
    ),
  ];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
