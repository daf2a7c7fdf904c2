/**
 * The conversations an engine holds, one per owner (a window sharing the worker): each is an
 * encoded image, the exchanges so far, and the KV cache that holds them, so that a follow-up
 * fills only its new tokens. Each can be a gigabyte or more at 7B, so few are kept.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChatTurn } from '../../shared/results';
import type { DecoderKvCache } from '../kv/decoderFeeds';
import type { PromptIds } from '../text/prompt';
import type { EncodedImage } from './encodeImage';

/** Conversations held at once; a third window's question drops the least recently used one. */
export const MAX_CONVERSATIONS = 2;

/**
 * Standalone conversations kept for reuse (VS Code's chat sends the whole conversation with every
 * request and no id: docs/vscode-chat.md): at most this many, and at most STANDALONE_BYTES of KV
 * cache among them, least recently used dropped first. Apart from the owners' conversations, so
 * that neither evicts the other.
 */
export const MAX_STANDALONE = 4;
export const STANDALONE_BYTES = 2 ** 30;

export const DEFAULT_OWNER = '';

export interface Conversation {
  /** The images' content (imageKeyOf, in order) and the reduction they were encoded with. */
  readonly imageKey: string;
  readonly mode: string;
  /** In prompt order; none for a question without a picture. */
  readonly images: readonly EncodedImage[];
  turns: ChatTurn[];
  /** The ids whose keys and values `cache` holds: always its first `cache.length` positions' ids. */
  ids: number[];
  readonly cache: DecoderKvCache;
}

export class Conversations {
  /** Least recently used first. */
  private readonly byOwner = new Map<string, Conversation>();
  /** Kept standalone conversations, most recently used first. */
  private standalone: Conversation[] = [];

  /** The kept standalone conversation `score` rates highest (above 0), taken out of the pool while it is used. */
  takeStandalone(score: (c: Conversation) => number): Conversation | undefined {
    let best: Conversation | undefined;
    let bestScore = 0;
    for (const c of this.standalone) {
      const s = score(c);
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    if (best) this.standalone = this.standalone.filter((c) => c !== best);
    return best;
  }

  /** Keeps `conv` for a later standalone request, within MAX_STANDALONE and STANDALONE_BYTES (`bytes`: a conversation's KV cache). */
  keepStandalone(conv: Conversation, bytes: (c: Conversation) => number): void {
    this.standalone = [conv, ...this.standalone.filter((c) => c !== conv)];
    let total = 0;
    this.standalone = this.standalone.filter((c, i) => {
      total += bytes(c);
      const keep = i === 0 || (i < MAX_STANDALONE && total <= STANDALONE_BYTES);
      if (!keep) c.cache.dispose();
      return keep;
    });
  }

  /** Standalone conversations kept, and the positions their caches hold. */
  get standaloneKept(): { readonly conversations: number; readonly positions: number } {
    return { conversations: this.standalone.length, positions: this.standalone.reduce((n, c) => n + c.cache.length, 0) };
  }

  /** `owner`'s conversation, now the most recently used. */
  use(owner: string): Conversation | undefined {
    const c = this.byOwner.get(owner);
    if (c) {
      this.byOwner.delete(owner);
      this.byOwner.set(owner, c);
    }
    return c;
  }

  peek(owner: string): Conversation | undefined {
    return this.byOwner.get(owner);
  }

  /** Makes `conv` the owner's, forgetting the one it replaces and the least recently used beyond MAX_CONVERSATIONS. */
  start(owner: string, conv: Conversation): void {
    this.forget(owner);
    this.byOwner.set(owner, conv);
    for (const [old] of this.byOwner) {
      if (this.byOwner.size <= MAX_CONVERSATIONS) break;
      this.forget(old);
    }
  }

  /** Forgets `owner`'s conversation, its KV cache included. */
  forget(owner: string): void {
    this.byOwner.get(owner)?.cache.dispose();
    this.byOwner.delete(owner);
  }

  forgetAll(): void {
    for (const owner of [...this.byOwner.keys()]) this.forget(owner);
    for (const c of this.standalone) c.cache.dispose();
    this.standalone = [];
  }
}

/**
 * How many leading prompt ids the conversation's cache already holds. At least one token must be
 * filled to get logits, and an image is never split: a cache ending inside one is cut back to its start.
 */
export function reusablePrefix(cached: readonly number[], prompt: PromptIds): number {
  let reuse = 0;
  while (reuse < cached.length && reuse < prompt.ids.length - 1 && cached[reuse] === prompt.ids[reuse]) reuse++;
  const inside = prompt.images.find((s) => reuse > s.start && reuse < s.start + s.rows);
  return inside ? inside.start : reuse;
}

/** Names an image's content: a file's path with its size and modification time, or the bytes' hash. */
export async function imageKeyOf(image: string | Uint8Array): Promise<string> {
  if (typeof image !== 'string') return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  const path = resolve(image);
  const s = await stat(path).catch(() => undefined); // a missing file is reported by preprocessing
  return s ? `path:${path}:${s.size}:${s.mtimeMs}` : `path:${path}`;
}
