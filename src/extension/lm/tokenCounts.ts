/**
 * What an image costs in a language-model request, for provideTokenCount: at most what the
 * reduction sends where that is bounded before the tower runs (`topk:K`: K patches and a
 * remainder row per part, never more than every token), and every token where it is not
 * (PruMerge's count depends on the image's attention). No vscode import.
 */
import type { ImageTokenCount } from '../../shared/reductionChoices';
import type { ReduceMode } from '../../shared/reduceMode';

export function imageTokenEstimate(tokens: ImageTokenCount, reduce: ReduceMode): number {
  return reduce.kind === 'topk' ? Math.min(tokens.total, tokens.subImages * (reduce.k + 1)) : tokens.total;
}
