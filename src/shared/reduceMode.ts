/** How the N patch tokens of the vision tower are reduced before the projector. */
import { UserError } from '../common/errors';
export type ReduceMode =
  | { readonly kind: 'none' }
  | { readonly kind: 'prumerge' }
  | { readonly kind: 'prumerge+' }
  | { readonly kind: 'topk'; readonly k: number };

export const REDUCE_MODE_SYNTAX = 'none | prumerge | prumerge+ | topk:N (N a whole number >= 1)';

export class ReduceModeError extends UserError {
  override readonly name = 'ReduceModeError';
}

/** Parses the textual form used by the CLI and the settings: `none`, `prumerge`, `prumerge+`, `topk:32`. */
export function parseReduceMode(text: string): ReduceMode {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === 'prumerge' || t === 'prumerge+') {
    return { kind: t };
  }
  const m = /^topk:(\d+)$/.exec(t);
  if (m) {
    const k = Number(m[1]);
    if (Number.isSafeInteger(k) && k >= 1) {
      return { kind: 'topk', k };
    }
  }
  throw new ReduceModeError(`unknown reduction "${text}": expected ${REDUCE_MODE_SYNTAX}`);
}

/** Whether `text` is a reduction parseReduceMode reads. */
export function isReduceModeText(text: string): boolean {
  try {
    parseReduceMode(text);
    return true;
  } catch {
    return false;
  }
}

export function formatReduceMode(mode: ReduceMode): string {
  return mode.kind === 'topk' ? `topk:${mode.k}` : mode.kind;
}
