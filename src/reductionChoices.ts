/**
 * The reductions the UI offers, in menu order: the chat's picker, the heatmap's, and the
 * `prumergeVision.defaultReduction` setting's enum in package.json (a test keeps that in step).
 */
export interface ReductionChoice {
  /** As parseReduceMode reads it. */
  readonly value: string;
  /** The chat's menu entry. */
  readonly label: string;
  /** The heatmap's, where space is short. */
  readonly short: string;
}

export const REDUCTION_CHOICES: readonly ReductionChoice[] = [
  { value: 'prumerge', label: 'PruMerge (adaptive, ~32 tokens)', short: 'PruMerge' },
  { value: 'prumerge+', label: 'PruMerge+ (adaptive, ~144 tokens)', short: 'PruMerge+' },
  { value: 'topk:32', label: 'Fixed budget: 32 tokens', short: 'Fixed budget: 32' },
  { value: 'none', label: 'All 576 tokens', short: 'All 576 tokens' },
];
