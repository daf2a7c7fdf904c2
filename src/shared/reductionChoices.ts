/**
 * The reductions the UI offers, in menu order: the chat's picker, the heatmap's, and the
 * `prumergeVision.defaultReduction` setting's enum in package.json (a test keeps that in step).
 * Their labels say the counts of the model in use and the attached image (LLaVA-1.5: 576 visual
 * tokens in one part; LLaVA-NeXT: a count that depends on the image's size, in several parts),
 * never a count written for one model.
 */
export interface ReductionChoice {
  /** As parseReduceMode reads it. */
  readonly value: string;
}

export const REDUCTION_CHOICES: readonly ReductionChoice[] = [
  { value: 'prumerge' },
  { value: 'prumerge+' },
  { value: 'topk:32' },
  { value: 'none' },
];

/** An image's visual tokens without reduction, and the parts (sub-images) the vision tower reads. */
export interface ImageTokenCount {
  readonly total: number;
  readonly subImages: number;
}

/** The chat's menu entry for `value` (`long`), or the heatmap's where space is short. */
export function reductionLabel(value: string, tokens: ImageTokenCount | undefined, form: 'long' | 'short' = 'long'): string {
  const long = form === 'long';
  // the picker is narrow in a side bar: the setting's description says what each one does
  if (value === 'prumerge') return long ? 'PruMerge (adaptive)' : 'PruMerge';
  if (value === 'prumerge+') return long ? 'PruMerge+ (adaptive, more)' : 'PruMerge+';
  if (value === 'none') return tokens ? `All ${tokens.total} tokens` : 'All visual tokens';
  const k = /^topk:(\d+)$/.exec(value)?.[1];
  if (k !== undefined) {
    const parts = tokens && tokens.subImages > 1 ? ` in each of ${tokens.subImages} parts` : '';
    return long ? `Fixed budget: ${k} patches${parts}` : `Fixed budget: ${k}${parts ? ` x ${tokens!.subImages}` : ''}`;
  }
  return value;
}

/** "the image's 576 visual tokens", or without a count while it is not known. */
export function visualTokensPhrase(tokens: ImageTokenCount | undefined): string {
  return tokens ? `the image's ${tokens.total} visual tokens` : "the image's visual tokens";
}
