/**
 * The messages between the extension host and its webviews (postMessage), typed, with a guard
 * for each message the host receives: a webview is untrusted input, so every message is checked
 * field by field before anything is done with it. No Node or vscode import: both sides use it.
 */
import type { PrefillProgress } from './prefillProgress';
import { isReduceModeText } from './reduceMode';
import { MAX_IMAGES, type ImageTokenCount, type OfferedDetails } from './reductionChoices';
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
  /** Several images: each one's counts, in the question's order. */
  readonly images?: readonly ImageFigures[];
}

/** One image's visual tokens in an answer about several. */
export interface ImageFigures {
  readonly name: string;
  readonly kept: number;
  readonly total: number;
}

/** An image an answer was given: its heatmap draws this one, whatever is attached since. */
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
  /** In the question's order; absent in chats saved before answers kept their images, and for messages that belong to no answer. */
  readonly images?: readonly AnswerImage[];
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
  /** `compare`: answer twice, side by side, with `compareWith` first (absent: all tokens at `reduce`'s detail), then `reduce`. */
  | { readonly type: 'ask'; readonly question: string; readonly reduce: string; readonly compare: boolean; readonly compareWith?: string }
  | { readonly type: 'stop' }
  | { readonly type: 'newChat' }
  /** Pick images from the workspace to add to those attached (the first ones, when none is). */
  | { readonly type: 'pickImage' }
  /** `key` as the state names the attached image. */
  | { readonly type: 'removeImage'; readonly key: string }
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
      /** In the order the question puts them. */
      readonly images: readonly AttachedImageView[];
      /** Images one question may hold. */
      readonly maxImages: number;
      /** Said while several are attached to a model trained on one image per conversation. */
      readonly severalNote: string | null;
      readonly model: { readonly name: string; readonly randomWeights: boolean };
      readonly reduce: string;
      /** The attached images' visual tokens with the model in use (their sum); null until known. */
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
      readonly images?: readonly AnswerImage[];
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
  | ({ readonly type: 'imageReading'; readonly key: string } & ImageReading)
  | { readonly type: 'cleared' };

/** An attached image as the chat shows it. */
export interface AttachedImageView {
  /** Names it in `removeImage` and `imageReading`. */
  readonly key: string;
  readonly name: string;
  readonly src: string;
  readonly pasted: boolean;
  /** Said when it is attached: it cannot be read, or it is far below the model's resolution. */
  readonly warning: string | null;
  /** Its crops read ahead of the question so far (null: not started, or given up). */
  readonly reading: ImageReading | null;
}

/** How far the worker has read an attached image's crops before a question about it. */
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
  | { readonly type: 'ready' }
  | { readonly type: 'changeMode'; readonly reduce: string }
  | { readonly type: 'exportPng' }
  /** The tab of the panel's `index`th image. */
  | { readonly type: 'showImage'; readonly index: number };

/** host -> heatmap panel */
export type HeatmapEvent =
  /** The panel's images, one tab each when there are several, and the one shown. */
  | { readonly type: 'images'; readonly names: readonly string[]; readonly index: number }
  /** `reduce`: the reading drawn (one crop each of several images, where the model has it); `index`: the image's tab. */
  | { readonly type: 'loading'; readonly reduce: string; readonly index: number }
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
      return (
        str(m['question']) &&
        reduceText(m['reduce']) &&
        typeof m['compare'] === 'boolean' &&
        (m['compareWith'] === undefined || reduceText(m['compareWith']))
      );
    case 'dropImage':
      return str(m['uri'], 4096);
    case 'pasteImage':
      return str(m['dataUrl'], MAX_DATA_URL) && /^data:image\/(png|jpeg|webp|gif);base64,/.test(m['dataUrl'] as string);
    case 'removeImage':
      return str(m['key'], 4096);
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
    case 'showImage':
      return Number.isInteger(m['index']) && (m['index'] as number) >= 0 && (m['index'] as number) < MAX_IMAGES;
    default:
      return false;
  }
}
