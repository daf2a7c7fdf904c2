/**
 * The reductions the UI offers, in menu order: the chat's picker, the heatmap's, and the
 * `prumergeVision.defaultReduction` setting's enum in package.json (a test keeps that in step).
 * Their labels say the counts of the model in use and the attached image (LLaVA-1.5: 576 visual
 * tokens in one part; LLaVA-NeXT: a count that depends on the image's size, in several parts),
 * never a count written for one model.
 */
import type { Detail } from './reduceMode';

export interface ReductionChoice {
  /** As parseReading reads it. */
  readonly value: string;
  /** Offered only for models with that reading: medium for tiled layouts, low for LLaVA-OneVision. */
  readonly detail?: 'medium' | 'low';
}

export const REDUCTION_CHOICES: readonly ReductionChoice[] = [
  { value: 'prumerge' },
  { value: 'prumerge+' },
  { value: 'topk:32' },
  { value: 'cdpruner:32' },
  { value: 'vispruner:32' },
  { value: 'divprune:32' },
  { value: 'none' },
  { value: 'prumerge@medium', detail: 'medium' },
  { value: 'prumerge@low', detail: 'low' },
  { value: 'none@low', detail: 'low' },
];

/**
 * The `prumergeVision.defaultReduction` value (its default) and the CLI's `--reduce` default that
 * stand for the reduction the published evidence favours for the model's vision tower.
 */
export const AUTO_REDUCTION = 'auto';

/**
 * What `auto` reads for a tower that scores patches by `score` (docs/reductions.md, "The default"):
 * PruMerge where the tower has a CLS token to attend from; DivPrune, which reads no attention, where
 * the only score is the attention a patch receives (the usual detector of attention sinks).
 */
export function defaultReadingFor(score: 'cls' | 'received' = 'cls'): string {
  return score === 'received' ? 'divprune:32' : 'prumerge';
}

/** A setting's or option's reading for a model whose tower scores patches by `score`: `auto` resolved, anything else as it is. */
export function readingSetting(value: string, score: 'cls' | 'received' = 'cls'): string {
  return value === AUTO_REDUCTION ? defaultReadingFor(score) : value;
}

/** The readings besides its own layout a model offers: medium where it reads tiles, low where it has one-crop reading. */
export interface OfferedDetails {
  readonly medium: boolean;
  readonly low: boolean;
}

export const NO_DETAILS: OfferedDetails = { medium: false, low: false };

/** The choices for a model: the other detail levels only where it has them. */
export function choicesFor(details: OfferedDetails): readonly ReductionChoice[] {
  return REDUCTION_CHOICES.filter((c) => !c.detail || details[c.detail]);
}

/** `value` where the model offers it, else the same reduction at the model's own detail. */
export function offeredReading(value: string, details: OfferedDetails): string {
  const m = /^(.*)@(low|medium)$/.exec(value);
  return m && !details[m[2] as 'low' | 'medium'] ? m[1]! : value;
}

/** An image's visual tokens without reduction, and the parts (sub-images) the vision tower reads. */
export interface ImageTokenCount {
  readonly total: number;
  readonly subImages: number;
  /** Tiled models: the same at medium detail (the base image and at most 4 tiles). */
  readonly medium?: { readonly total: number; readonly subImages: number };
  /** The vision tower's time per crop measured on this machine, once it has run (for the picker's estimate). */
  readonly msPerCrop?: number;
}

/** " · 7 crops, about 37 s": what a tiled reading costs, where the time per crop is known. */
function cropsNote(crops: number | undefined, msPerCrop: number | undefined): string {
  if (crops === undefined) return '';
  const time = msPerCrop === undefined ? '' : `, about ${Math.max(1, Math.round((crops * msPerCrop) / 1000))} s`;
  return ` · ${crops} crop${crops === 1 ? '' : 's'}${time}`;
}

/** The chat's menu entry for `value` (`long`), or the heatmap's where space is short. */
export function reductionLabel(value: string, tokens: ImageTokenCount | undefined, form: 'long' | 'short' = 'long'): string {
  const long = form === 'long';
  // the crops each detail level reads, and the tower's time for them, where the image has tiles
  const tiled = tokens !== undefined && tokens.subImages > 1 && long;
  // one padded crop: its count is the model's, not the attached image's
  if (value.endsWith('@low')) {
    const base = value.slice(0, -'@low'.length);
    const crops = tiled ? cropsNote(1, tokens.msPerCrop) : '';
    return base === 'none'
      ? long
        ? `All tokens of one crop (low detail)${crops}`
        : 'All, low detail'
      : `${reductionLabel(base, undefined, form)}, low detail${crops}`;
  }
  if (value.endsWith('@medium')) {
    const base = value.slice(0, -'@medium'.length);
    return `${reductionLabel(base, undefined, form)}, medium detail${tiled ? cropsNote(tokens.medium?.subImages, tokens.msPerCrop) : ''}`;
  }
  if (tiled && value === 'prumerge') return `PruMerge (adaptive)${cropsNote(tokens.subImages, tokens.msPerCrop)}`;
  // the picker is narrow in a side bar: the setting's description says what each one does
  if (value === 'prumerge') return long ? 'PruMerge (adaptive)' : 'PruMerge';
  if (value === 'prumerge+') return long ? 'PruMerge+ (adaptive, more)' : 'PruMerge+';
  if (value === 'none') return tokens ? `All ${tokens.total} tokens` : 'All visual tokens';
  const chosen = /^(cdpruner|vispruner|divprune):(\d+)$/.exec(value);
  if (chosen) {
    const [, method, t] = chosen;
    const parts = tokens && tokens.subImages > 1 ? (long ? ` in each of ${tokens.subImages} parts` : ` x ${tokens.subImages}`) : '';
    return long
      ? `${SELECTIONS[method!]!.name}: ${t} patches${parts}, ${SELECTIONS[method!]!.favours}`
      : `${SELECTIONS[method!]!.name}: ${t}${parts}`;
  }
  const k = /^topk:(\d+)$/.exec(value)?.[1];
  if (k !== undefined) {
    const parts = tokens && tokens.subImages > 1 ? ` in each of ${tokens.subImages} parts` : '';
    return long ? `Fixed budget: ${k} patches${parts}` : `Fixed budget: ${k}${parts ? ` x ${tokens!.subImages}` : ''}`;
  }
  return value;
}

/** The selections by name, and what each favours (docs/reductions.md). */
const SELECTIONS: Record<string, { readonly name: string; readonly favours: string }> = {
  cdpruner: { name: 'CDPruner', favours: 'varied and relevant to the question' },
  vispruner: { name: 'VisPruner', favours: 'salient, then varied' },
  divprune: { name: 'DivPrune', favours: 'as varied as possible' },
};

/** "the image's 576 visual tokens", or without a count while it is not known. */
export function visualTokensPhrase(tokens: ImageTokenCount | undefined): string {
  return tokens ? `the image's ${tokens.total} visual tokens` : "the image's visual tokens";
}

/** Images one question may hold (docs/architecture.md, "Several images"). */
export const MAX_IMAGES = 4;

/**
 * The detail each of `images` is read at: a model with a one-crop reading (LLaVA-OneVision) reads
 * each of several as one crop, as it was trained to, unless the question asks for another.
 */
export function detailForImages(asked: Detail, images: number, details: OfferedDetails): Detail {
  return asked === 'auto' && images > 1 && details.low ? 'low' : asked;
}
