/**
 * How far the prompt's prefill has got, and the time left at the rate so far: a full LLaVA-NeXT
 * prompt (2000+ positions) takes minutes to fill on a CPU, and the user should see it moving.
 * Pure: the CLI, the chat host and the webview all format it the same way.
 */

export interface PrefillProgress {
  /** Prompt positions in the KV cache now, the reused ones included. */
  readonly filled: number;
  readonly total: number;
  /** Positions taken from the conversation's cache, not filled by this request. */
  readonly reused: number;
  /** Since this request's prefill began. */
  readonly elapsedMs: number;
}

/** Milliseconds left at the rate so far; undefined before anything was filled. */
export function prefillMsLeft(p: PrefillProgress): number | undefined {
  const done = p.filled - p.reused;
  if (done <= 0 || p.elapsedMs <= 0) return undefined;
  return ((p.total - p.filled) * p.elapsedMs) / done;
}

/** e.g. "Reading the prompt: 1,024 of 2,370 tokens, about 45 s left" */
export function prefillText(p: PrefillProgress): string {
  const left = prefillMsLeft(p);
  const figures = `${p.filled.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')} tokens`;
  if (left === undefined || p.filled >= p.total) return `Reading the prompt: ${figures}`;
  const s = Math.ceil(left / 1000);
  const time = s >= 90 ? `${Math.round(s / 60)} min` : `${s} s`;
  return `Reading the prompt: ${figures}, about ${time} left`;
}
