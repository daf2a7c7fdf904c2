/**
 * What an image costs in a language-model request, for provideTokenCount: at most what the
 * reduction sends where that is bounded before the tower runs (`topk:K`: K patches and a
 * remainder row per part; the selections' T per part; pooling's windows; never more than every
 * token), and every token where it is not
 * (PruMerge's count depends on the image's attention). No vscode import.
 */
import type { ImageTokenCount } from '../../shared/reductionChoices';
import type { ReduceMode } from '../../shared/reduceMode';

export function imageTokenEstimate(tokens: ImageTokenCount, reduce: ReduceMode): number {
  switch (reduce.kind) {
    case 'topk':
      return Math.min(tokens.total, tokens.subImages * (reduce.k + 1));
    case 'cdpruner':
    case 'vispruner':
    case 'divprune':
    case 'random':
      return Math.min(tokens.total, tokens.subImages * reduce.k);
    case 'pool': {
      // a part's side in patches, in windows of K
      const side = Math.ceil(Math.sqrt(tokens.total / tokens.subImages) / reduce.k);
      return Math.min(tokens.total, tokens.subImages * side * side);
    }
    default:
      return tokens.total;
  }
}
