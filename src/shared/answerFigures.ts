/** The line of figures under an answer in the chat. Pure: it runs in the webview. */
import type { AnswerStats } from './webviewMessages';

/** e.g. "59 of 576 visual tokens, 9.8x fewer · image read from memory · first token 119 ms · 32.9 tokens/s · cpu". */
export function answerFigures(s: AnswerStats): string {
  if (s.tokens === 0 && s.stopReason === 'cancelled') return 'stopped before the first word';
  const fewer = s.totalVisualTokens / s.visualTokens;
  // CDPruner's patches depend on the question: the figures say whose
  const chosen = /^cdpruner:/.test(s.reduce) ? ', chosen for this question' : '';
  const tokens =
    s.reduce === 'none'
      ? `all ${s.totalVisualTokens} visual tokens`
      : `${s.visualTokens} of ${s.totalVisualTokens} visual tokens, ${fewer.toFixed(fewer >= 10 ? 0 : 1)}x fewer${chosen}`;
  const stopped = s.stopReason === 'cancelled' ? ' · stopped' : s.stopReason === 'repetition' ? ' · stopped repeating itself' : '';
  const cache = s.visionCache ? ` · ${s.visionCache}` : '';
  const each = s.images ? ` (${s.images.map((i) => `${i.name}: ${i.kept} of ${i.total}`).join(', ')})` : '';
  return `${tokens}${each}${cache} · first token ${Math.round(s.ttftMs)} ms · ${s.tokensPerSecond.toFixed(1)} tokens/s · ${s.ep}${stopped}`;
}
