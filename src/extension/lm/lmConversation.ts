/**
 * VS Code's language-model messages (as plain parts: see chatModelProvider.ts for the vscode
 * side) -> what the engine answers: the question, the earlier exchanges, and the images.
 * No vscode import, so that it is tested with plain Node.
 *
 * The engine puts a conversation's images in its first turn, in the order they came (up to
 * MAX_IMAGES: more are refused with a message saying so, never dropped silently); one without an
 * image gets a text-only answer. System messages' text goes before the first question, since
 * LLaVA's templates have no system turn of their own.
 */
import { UserError } from '../../common/errors';
import { MAX_IMAGES } from '../../shared/reductionChoices';
import { toolCallText, toolResultText, ToolSignature, toolsPrompt } from './toolCalls';
import type { ChatTurn } from '../../shared/results';

export type LmPart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'image'; readonly mimeType: string; readonly data: Uint8Array }
  /** A call the model made earlier (assistant), and a tool's result (user): read as text (toolCalls.ts). */
  | { readonly kind: 'toolCall'; readonly name: string; readonly input: object }
  | { readonly kind: 'toolResult'; readonly text: string }
  /** Data of another type: nothing the model reads. */
  | { readonly kind: 'other'; readonly what: string };

export interface LmMessage {
  readonly role: 'user' | 'assistant' | 'system';
  readonly parts: readonly LmPart[];
}

export interface LmImage {
  readonly mimeType: string;
  readonly data: Uint8Array;
}

export interface LmQuestion {
  readonly question: string;
  /** Earlier exchanges, oldest first: the engine reads them again with the images. */
  readonly history: ChatTurn[];
  /** Every image of the conversation, in order. */
  readonly images: readonly LmImage[];
}

export class LmRequestError extends UserError {
  override readonly name = 'LmRequestError';
}

/** The image types the engine's decoder reads, as MIME types. */
export const IMAGE_TYPES: readonly string[] = [
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/gif',
  'image/bmp',
  'image/tiff',
  'image/avif',
];

/** `tools`: what the caller offers the model (toolsPrompt's text goes before the first question). */
export function lmQuestion(messages: readonly LmMessage[], tools: readonly ToolSignature[] = []): LmQuestion {
  const images: LmImage[] = [];
  const system: string[] = tools.length > 0 ? [toolsPrompt(tools)] : [];
  const turns: { question: string[]; answer?: string[] }[] = [];
  for (const m of messages) {
    const text = m.parts.flatMap((p) => {
      if (p.kind === 'text') return p.text.trim() ? [p.text] : [];
      if (p.kind === 'toolCall') return [toolCallText(p.name, p.input)];
      if (p.kind === 'toolResult') return [toolResultText(p.text)];
      return [];
    });
    for (const p of m.parts) {
      if (p.kind !== 'image') continue;
      if (!IMAGE_TYPES.includes(p.mimeType.toLowerCase()))
        throw new LmRequestError(`images of type ${p.mimeType} cannot be read: attach a PNG, JPEG, WebP or GIF image`);
      images.push({ mimeType: p.mimeType.toLowerCase(), data: p.data });
    }
    if (m.role === 'system') system.push(...text);
    else if (m.role === 'user') {
      const last = turns[turns.length - 1];
      if (last && !last.answer) last.question.push(...text);
      else turns.push({ question: [...text] });
    } else {
      const last = turns[turns.length - 1];
      if (!last) continue; // an assistant message before any question: nothing it answers
      (last.answer ??= []).push(...text);
    }
  }
  const last = turns[turns.length - 1];
  if (!last || last.answer) throw new LmRequestError('the conversation must end with a question from the user');
  if (images.length > MAX_IMAGES) {
    throw new LmRequestError(
      `this conversation holds ${images.length} images, and the model reads at most ${MAX_IMAGES} in one conversation: start a new chat for the others`,
    );
  }
  if (system.length > 0) turns[0]!.question.unshift(...system);
  const question = last.question.join('\n\n').trim();
  if (!question) throw new LmRequestError('the question is empty: type what you want to know about the image');
  return {
    question,
    history: turns.slice(0, -1).map((t) => ({ question: t.question.join('\n\n'), answer: (t.answer ?? []).join('\n\n') })),
    images,
  };
}
