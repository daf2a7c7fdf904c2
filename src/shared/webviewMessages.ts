/**
 * The messages between the extension host and its webviews (postMessage), typed, with a guard
 * for each message the host receives: a webview is untrusted input, so every message is checked
 * field by field before anything is done with it. No Node or vscode import: both sides use it.
 */
import type { PrefillProgress } from './prefillProgress';
import { isReduceModeText } from './reduceMode';
import type { ImageTokenCount, OfferedDetails } from './reductionChoices';
import type { AskStage, Inspection } from './results';

/** Figures shown under an answer. */
export interface AnswerStats {
  readonly visualTokens: number;
  readonly totalVisualTokens: number;
  readonly ttftMs: number;
  readonly tokensPerSecond: number;
  readonly ep: string;
  readonly stopReason: string;
  readonly reduce: string;
  /** Tokens generated. */
  readonly tokens: number;
  /** A new reading of the image whose crops (some or all) came from the worker's memory: what the figures say of it. */
  readonly visionCache?: string;
}

/** The image an answer was given: its heatmap draws this one, whatever is attached since. */
export interface AnswerImage {
  readonly path: string;
  /** As the user knows it: relative to the workspace, or "pasted image". */
  readonly name: string;
}

/** One answer in the chat, as the host keeps it and the webview shows it. */
export interface ChatAnswer {
  readonly id: string;
  /** Answers to one question (two when comparing) share a group. */
  readonly group: string;
  readonly question: string;
  readonly reduce: string;
  /** Absent in chats saved before answers kept their image, and for messages that belong to no answer. */
  readonly image?: AnswerImage;
  text: string;
  stats?: AnswerStats;
  error?: string;
  note?: string;
  /** What the engine is doing before the first words arrive. */
  stage?: AskStage;
  /** While the prompt is filled: how far it has got. */
  prefill?: PrefillProgress;
  done: boolean;
}

/** chat view -> host; `reduce` as parseReading reads it (the guard checks it does) */
export type ChatRequest =
  | { readonly type: 'ready' }
  | { readonly type: 'ask'; readonly question: string; readonly reduce: string; readonly compare: boolean }
  | { readonly type: 'stop' }
  | { readonly type: 'newChat' }
  | { readonly type: 'pickImage' }
  /** The random-weights notice's link: download and build a real model. */
  | { readonly type: 'getModel' }
  | { readonly type: 'dropImage'; readonly uri: string }
  | { readonly type: 'pasteImage'; readonly dataUrl: string }
  /** `answerId`: the heatmap of that answer's image and reading; absent: the attached image's. */
  | { readonly type: 'showHeatmap'; readonly reduce: string; readonly answerId?: string }
  | { readonly type: 'copy'; readonly text: string }
  | { readonly type: 'openLink'; readonly href: string };

/** host -> chat view */
export type ChatEvent =
  | {
      readonly type: 'state';
      readonly image: {
        readonly name: string;
        readonly src: string;
        readonly pasted: boolean;
        /** Said when it is attached: it cannot be read, or it is far below the model's resolution. */
        readonly warning: string | null;
        /** Its crops read ahead of the question so far (null: not started, or given up). */
        readonly reading: ImageReading | null;
      } | null;
      readonly model: { readonly name: string; readonly randomWeights: boolean };
      readonly reduce: string;
      /** The attached image's visual tokens with the model in use; null until known. */
      readonly tokens: ImageTokenCount | null;
      /** The model can read an image at low detail (LLaVA-OneVision): the picker offers it. */
      readonly details: OfferedDetails;
      /** Why the chat on screen began, when the user did not ask for it (another image was attached); null after its first question. */
      readonly chatNote: string | null;
    }
  | {
      readonly type: 'answerStart';
      readonly id: string;
      readonly question: string;
      readonly reduce: string;
      readonly group: string;
      readonly image?: AnswerImage;
    }
  /** An answer that was due and did not run (Stop during Compare's first answer): `note` says so. */
  | {
      readonly type: 'answerNotRun';
      readonly id: string;
      readonly question: string;
      readonly reduce: string;
      readonly group: string;
      readonly note: string;
    }
  | { readonly type: 'answerStage'; readonly id: string; readonly stage: AskStage }
  | { readonly type: 'answerPrefill'; readonly id: string; readonly progress: PrefillProgress }
  | { readonly type: 'answerDelta'; readonly id: string; readonly delta: string }
  /** `note`: something the user should know about this answer (e.g. the image changed). */
  | { readonly type: 'answerEnd'; readonly id: string; readonly answer: string; readonly stats: AnswerStats; readonly note?: string }
  | { readonly type: 'answerError'; readonly id: string; readonly message: string }
  | { readonly type: 'busy'; readonly busy: boolean }
  /** The whole conversation, for a view shown again after being hidden (answers go on meanwhile). */
  | { readonly type: 'transcript'; readonly answers: readonly ChatAnswer[]; readonly busy: boolean }
  | { readonly type: 'focusQuestion' }
  | ({ readonly type: 'imageReading' } & ImageReading)
  | { readonly type: 'cleared' };

/** How far the worker has read the attached image's crops before a question about it. */
export interface ImageReading {
  readonly done: number;
  readonly total: number;
}

/** What the chat says of an early reading, under the attached image. */
export function imageReadingText(r: ImageReading): string {
  if (r.done < r.total) return `Reading the image ahead of your question: crop ${r.done + 1} of ${r.total}`;
  return r.total === 1
    ? 'Image read: a question starts at the language model'
    : `Image read: all ${r.total} crops, a question starts at the language model`;
}

/** heatmap panel -> host; `reduce` as parseReading reads it (the guard checks it does) */
export type HeatmapRequest =
  { readonly type: 'ready' } | { readonly type: 'changeMode'; readonly reduce: string } | { readonly type: 'exportPng' };

/** host -> heatmap panel */
export type HeatmapEvent =
  | { readonly type: 'loading'; readonly reduce: string }
  | { readonly type: 'heatmap'; readonly imageSrc: string; readonly name: string; readonly inspection: Inspection }
  | { readonly type: 'error'; readonly message: string };

const MAX_TEXT = 100_000;
const MAX_DATA_URL = 40 * 2 ** 20;

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === 'object' && m !== null;
}

const str = (v: unknown, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const reduceText = (v: unknown): v is string => str(v, 32) && isReduceModeText(v);

/** The chat view's messages, validated field by field. */
export function isChatRequest(m: unknown): m is ChatRequest {
  if (!isObject(m)) return false;
  switch (m['type']) {
    case 'ready':
    case 'stop':
    case 'newChat':
    case 'pickImage':
    case 'getModel':
      return true;
    case 'ask':
      return str(m['question']) && reduceText(m['reduce']) && typeof m['compare'] === 'boolean';
    case 'dropImage':
      return str(m['uri'], 4096);
    case 'pasteImage':
      return str(m['dataUrl'], MAX_DATA_URL) && /^data:image\/(png|jpeg|webp|gif);base64,/.test(m['dataUrl'] as string);
    case 'showHeatmap':
      return reduceText(m['reduce']) && (m['answerId'] === undefined || str(m['answerId'], 64));
    case 'copy':
      return str(m['text']);
    case 'openLink':
      return str(m['href'], 4096);
    default:
      return false;
  }
}

export function isHeatmapRequest(m: unknown): m is HeatmapRequest {
  if (!isObject(m)) return false;
  switch (m['type']) {
    case 'ready':
      return true;
    case 'changeMode':
      return reduceText(m['reduce']);
    case 'exportPng':
      return true;
    default:
      return false;
  }
}
