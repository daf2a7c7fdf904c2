/**
 * The reductions the UI offers, in menu order: the chat's picker, the heatmap's, and the
 * `prumergeVision.defaultReduction` setting's enum in package.json (a test keeps that in step).
 * Their labels say the counts of the model in use and the attached image (LLaVA-1.5: 576 visual
 * tokens in one part; LLaVA-NeXT: a count that depends on the image's size, in several parts),
 * never a count written for one model.
 */
export interface ReductionChoice {
  /** As parseReading reads it. */
  readonly value: string;
  /** Offered only for models with a low-detail reading (LLaVA-OneVision). */
  readonly lowDetail?: true;
}

export const REDUCTION_CHOICES: readonly ReductionChoice[] = [
  { value: 'prumerge' },
  { value: 'prumerge+' },
  { value: 'topk:32' },
  { value: 'none' },
  { value: 'prumerge@low', lowDetail: true },
  { value: 'none@low', lowDetail: true },
];

/** The choices for a model: the low-detail ones only where it has that reading. */
export function choicesFor(lowDetail: boolean): readonly ReductionChoice[] {
  return REDUCTION_CHOICES.filter((c) => lowDetail || !c.lowDetail);
}

/** `value` where the model offers it, else the same reduction at the model's own detail. */
export function offeredReading(value: string, lowDetail: boolean): string {
  return lowDetail || !value.endsWith('@low') ? value : value.slice(0, -'@low'.length);
}

/** An image's visual tokens without reduction, and the parts (sub-images) the vision tower reads. */
export interface ImageTokenCount {
  readonly total: number;
  readonly subImages: number;
}

/** The chat's menu entry for `value` (`long`), or the heatmap's where space is short. */
export function reductionLabel(value: string, tokens: ImageTokenCount | undefined, form: 'long' | 'short' = 'long'): string {
  const long = form === 'long';
  // one padded crop: its count is the model's, not the attached image's
  if (value.endsWith('@low')) {
    const base = value.slice(0, -'@low'.length);
    return base === 'none'
      ? long
        ? 'All tokens of one crop (low detail)'
        : 'All, low detail'
      : `${reductionLabel(base, undefined, form)}, low detail`;
  }
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
