/**
 * The heatmap's colour scale, shared by the PNG export (src/pipeline/image/heatmap.ts) and the panel
 * (webview/heatmap.ts) so that both draw the same colours. Pure: it runs in the webview too.
 */

/** viridis at five stops: low attention dark blue, high attention yellow. */
export const ATTENTION_STOPS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** The colour at t in 0..1 along the scale. */
export function attentionColour(t: number): string {
  const s = ATTENTION_STOPS;
  const x = Math.min(Math.max(t, 0), 1) * (s.length - 1);
  const i = Math.min(Math.floor(x), s.length - 2);
  const f = x - i;
  return `rgb(${s[i]!.map((v, k) => Math.round(v + (s[i + 1]![k]! - v) * f)).join(',')})`;
}

/**
 * The colour of one patch's attention given the largest: square root of the ratio, so that a few
 * outliers do not leave every other patch dark.
 */
export function patchColour(attention: number, max: number): string {
  return attentionColour(Math.sqrt(attention / (max || 1)));
}

/**
 * What the colour measures: CLIP's CLS attention, or, for towers without CLS, the attention a patch
 * receives (docs/prumerge.md); CDPruner's relevance to the question where an inspection has it.
 */
export function scoreName(score: 'cls' | 'received' | undefined, relevance = false): string {
  if (relevance) return 'relevance to the question';
  return score === 'received' ? 'attention received' : 'CLS attention';
}
