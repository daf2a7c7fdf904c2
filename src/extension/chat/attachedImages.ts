/**
 * The images attached to the chat, in the order a question puts them: which can be added, how
 * each is read ahead of the question, and the visual tokens they make together. No vscode import.
 */
import type { Detail } from '../../shared/reduceMode';
import { type ImageTokenCount, MAX_IMAGES } from '../../shared/reductionChoices';
import type { ImageReading } from '../../shared/webviewMessages';

export interface AttachedImage {
  readonly path: string;
  readonly pasted: boolean;
  /** Said under it: it cannot be read, or it is far below the model's resolution (null: nothing to say, or not checked yet). */
  warning: string | null;
  /** Its crops read into the worker's vision cache ahead of the question (null: not started, or given up). */
  reading: ImageReading | null;
  /** Decoded by the worker: it can be read ahead. */
  readable: boolean;
  /** The early reading under way or done: the detail it reads at, and its stop; replaced when the detail the question needs changes. */
  early: { readonly detail: Detail; readonly stop: AbortController } | undefined;
}

export function attachedImage(path: string, pasted: boolean): AttachedImage {
  return { path, pasted, warning: null, reading: null, readable: false, early: undefined };
}

/**
 * `current` followed by those of `added` not already attached, or, where that is more than a
 * question holds, what to tell the user.
 */
export function withAdded(
  current: readonly AttachedImage[],
  added: readonly AttachedImage[],
  nameOf: (path: string) => string,
): AttachedImage[] | string {
  const fresh = added.filter((a, i) => !current.some((c) => c.path === a.path) && added.findIndex((b) => b.path === a.path) === i);
  const all = [...current, ...fresh];
  if (all.length <= MAX_IMAGES) return all;
  const names = fresh.map((a) => nameOf(a.path)).join(', ');
  return `A question holds at most ${MAX_IMAGES} images: remove ${all.length - MAX_IMAGES === 1 ? 'one' : all.length - MAX_IMAGES} of those attached to add ${names}.`;
}

/** The same paths in the same order. */
export function samePaths(a: readonly { readonly path: string }[], b: readonly { readonly path: string }[]): boolean {
  return a.length === b.length && a.every((x, i) => x.path === b[i]!.path);
}

/** The tokens of several images together, once each one's is known (a question reads every one). */
export function totalTokens(counts: readonly (ImageTokenCount | undefined)[]): ImageTokenCount | undefined {
  if (counts.length === 0 || counts.some((c) => c === undefined)) return undefined;
  if (counts.length === 1) return counts[0];
  const known = counts as readonly ImageTokenCount[];
  const msPerCrop = known.find((c) => c.msPerCrop !== undefined)?.msPerCrop;
  return {
    total: known.reduce((n, c) => n + c.total, 0),
    subImages: known.reduce((n, c) => n + c.subImages, 0),
    ...(msPerCrop !== undefined ? { msPerCrop } : {}),
  };
}
