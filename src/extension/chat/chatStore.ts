/**
 * The chats of a workspace, kept on disk so that a window reload or a restart loses nothing:
 * the last MAX_CHATS conversations (transcript, reduction, attached images) in one JSON file in the
 * workspace's storage, written whole to a temporary file and renamed over the old one. A file
 * that cannot be read back is set aside (renamed, not deleted) and the chats start empty, with a
 * warning. Pasted images live beside it and are deleted with the last chat that refers to them.
 * No vscode import: the tests drive it with plain folders.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { interrupted } from '../../shared/chatTranscript';
import type { AnswerImage, ChatAnswer } from '../../shared/webviewMessages';

export const CHATS_FILE = 'chats.json';
export const MAX_CHATS = 20;
const FORMAT = 'prumerge-vision-chats';

export interface SavedImage {
  readonly path: string;
  /** A pasted screenshot stored by the extension (deleted with its chats), not a workspace file. */
  readonly pasted: boolean;
}

export interface SavedChat {
  readonly id: string;
  /** The first question. */
  readonly title: string;
  /** Milliseconds since the epoch. */
  readonly updated: number;
  /** Attached when it was saved, in the question's order. */
  readonly images: readonly SavedImage[];
  readonly answers: readonly ChatAnswer[];
}

/** As chats were saved before a question could hold several images: one image, and one per answer. */
interface SavedChatV1 extends Omit<SavedChat, 'images' | 'answers'> {
  readonly image: SavedImage | null;
  readonly answers: readonly (Omit<ChatAnswer, 'images'> & { readonly image?: AnswerImage })[];
}

export interface ChatHistory {
  /** Newest first; `chats[0]` is the one the view shows. */
  readonly chats: readonly SavedChat[];
}

export interface LoadedHistory extends ChatHistory {
  /** Set when the file was unreadable and set aside. */
  readonly warning?: string;
}

export function newChatId(): string {
  return randomUUID();
}

export class ChatStore {
  constructor(
    /** The workspace's storage folder: chats.json and pasted/. */
    readonly dir: string,
  ) {}

  get pastedDir(): string {
    return join(this.dir, 'pasted');
  }

  async load(): Promise<LoadedHistory> {
    const file = join(this.dir, CHATS_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { chats: [] }; // no chats yet
    }
    try {
      const json = JSON.parse(text) as { format?: unknown; chats?: unknown };
      if (json?.format !== FORMAT || !Array.isArray(json.chats) || !json.chats.every(isSavedChat)) throw new Error('not a chat history');
      return { chats: (json.chats as (SavedChat | SavedChatV1)[]).map(upgraded).map(withInterrupted).slice(0, MAX_CHATS) };
    } catch (e) {
      const aside = join(this.dir, `chats.unreadable-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      await rename(file, aside).catch(() => undefined);
      return {
        chats: [],
        warning: `The saved chats could not be read (${(e as Error).message}): the file was set aside as ${basename(aside)} and the chat starts empty.`,
      };
    }
  }

  /** Writes the newest MAX_CHATS chats; pasted images no chat refers to (nor `inUse`) are deleted. */
  async save(history: ChatHistory, inUse: readonly string[] = []): Promise<void> {
    const chats = history.chats.slice(0, MAX_CHATS);
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, CHATS_FILE);
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, JSON.stringify({ format: FORMAT, version: 2, chats }));
    await rename(partial, file);
    await this.deleteUnusedPasted(chats, inUse);
  }

  /** Forgets every chat and every pasted image. */
  async clear(): Promise<void> {
    await this.save({ chats: [] });
    await rm(this.pastedDir, { recursive: true, force: true });
  }

  private async deleteUnusedPasted(chats: readonly SavedChat[], inUse: readonly string[]): Promise<void> {
    const used = new Set(chats.flatMap((c) => c.images.flatMap((i) => (i.pasted ? [basename(i.path)] : []))));
    for (const path of inUse) used.add(basename(path));
    const files = await readdir(this.pastedDir).catch(() => [] as string[]);
    await Promise.all(files.filter((f) => !used.has(f)).map((f) => rm(join(this.pastedDir, f), { force: true })));
  }
}

/**
 * The names of the images a chat's answers were about, in the order first asked; a chat saved before
 * answers kept their image gives the image it had attached.
 */
export function imagesOf(chat: SavedChat): string[] {
  const names = [...new Set(chat.answers.flatMap((a) => (a.images ?? []).map((i) => i.name)))];
  if (names.length > 0) return names;
  return chat.images.map((i) => (i.pasted ? 'pasted image' : basename(i.path)));
}

/** `chats` with `chat` first, replacing its older version. */
export function withChat(history: ChatHistory, chat: SavedChat): ChatHistory {
  return { chats: [chat, ...history.chats.filter((c) => c.id !== chat.id)].slice(0, MAX_CHATS) };
}

/** An answer that was being written when the window went away is marked so, not left spinning. */
function withInterrupted(chat: SavedChat): SavedChat {
  if (chat.answers.every((a) => a.done)) return chat;
  return { ...chat, answers: chat.answers.map((a) => interrupted(a, 'the window was reloaded while this answer was being written')) };
}

/** A chat saved before several images, in today's form. */
function upgraded(chat: SavedChat | SavedChatV1): SavedChat {
  if ('images' in chat) return chat;
  const { image, answers, ...rest } = chat;
  return {
    ...rest,
    images: image ? [image] : [],
    answers: answers.map(({ image: one, ...a }) => ({ ...a, ...(one ? { images: [one] } : {}) })),
  };
}

function isSavedChat(v: unknown): v is SavedChat | SavedChatV1 {
  const c = v as (Partial<SavedChat> & { image?: unknown }) | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.id === 'string' &&
    typeof c.title === 'string' &&
    typeof c.updated === 'number' &&
    (Array.isArray(c.images) ? c.images.every(isSavedImage) : c.image === null || isSavedImage(c.image)) &&
    Array.isArray(c.answers) &&
    c.answers.every(isAnswer)
  );
}

function isSavedImage(v: unknown): v is SavedImage {
  const i = v as Partial<SavedImage> | null;
  return typeof i === 'object' && i !== null && typeof i.path === 'string' && typeof i.pasted === 'boolean';
}

function isAnswerImage(v: unknown): v is AnswerImage {
  const i = v as Partial<AnswerImage> | null;
  return typeof i === 'object' && i !== null && typeof i.path === 'string' && typeof i.name === 'string';
}

function isAnswer(v: unknown): v is ChatAnswer {
  const a = v as (Partial<ChatAnswer> & { image?: unknown }) | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.id === 'string' &&
    typeof a.group === 'string' &&
    typeof a.question === 'string' &&
    typeof a.reduce === 'string' &&
    typeof a.text === 'string' &&
    typeof a.done === 'boolean' &&
    (a.images === undefined || (Array.isArray(a.images) && a.images.every(isAnswerImage))) &&
    (a.image === undefined || isAnswerImage(a.image))
  );
}
