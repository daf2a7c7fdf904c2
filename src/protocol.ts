/**
 * The contract between the extension host and the inference worker (JSON-RPC over the child
 * process's IPC channel). Direction is in each name's comment; the worker owns all native memory,
 * the host never loads onnxruntime. Plain JSON values only: no typed arrays cross the channel.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { AskResult, AskStage, Inspection } from './pipeline/engine';
import type { PrefillProgress } from './pipeline/prefillProgress';
import type { ChatTurn } from './pipeline/prompt';
import { isReduceModeText, type ReduceMode } from './pipeline/reduceMode';
import type { ExecutionProviderSetting } from './pipeline/sessions';
import type { ImageTokenCount } from './reductionChoices';

/** A model to run, as the host names it. */
export interface ModelSpec {
  readonly modelDir: string;
  readonly ep: ExecutionProviderSetting;
  /** onnxruntime's threads per graph; 0 or absent: one per physical core (src/pipeline/threads.ts). */
  readonly threads?: number;
}

export interface LoadResult {
  readonly name: string;
  readonly ep: string;
  /** Why `auto` did not take the GPU providers it tried or skipped, e.g. a software Vulkan driver. */
  readonly epFallbacks: readonly string[];
  readonly randomWeights: boolean;
  /** Patches per side of the vision tower's grid. */
  readonly grid: number;
  readonly maxPositions: number;
  /** onnxruntime's threads per graph, as used. */
  readonly threads: number;
}

export interface AskParams extends ModelSpec {
  /** Chosen by the host; names the request in `text` notifications and in `cancel`. */
  readonly requestId: string;
  /** Absolute path of the image file. */
  readonly image: string;
  readonly question: string;
  readonly reduce: ReduceMode;
  readonly maxNewTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly followUp?: boolean;
  /** Earlier exchanges a new conversation begins with (a restored chat). */
  readonly history?: readonly ChatTurn[];
}

export interface InspectParams extends ModelSpec {
  readonly image: string;
  readonly reduce: ReduceMode;
  /** Names the request in `cancel` (a heatmap whose mode changed drops the run it superseded). */
  readonly requestId?: string;
}

export interface ImageTokensParams extends ModelSpec {
  readonly image: string;
}

/** How many visual tokens an image makes without reduction, and in how many parts the tower reads it. */
export type ImageTokens = ImageTokenCount;

/** The reduction of one image, for the heatmap. */
export type InspectResult = Inspection;

export interface BuildParams {
  /** A Hugging Face checkpoint folder. */
  readonly from: string;
  readonly out: string;
  readonly dtype: 'fp32' | 'fp16' | 'int4';
  /** What the model is called (default: the checkpoint folder's name). */
  readonly name?: string;
  readonly buildId: string;
}

export interface WorkerStats {
  /** Resident memory of the worker process, bytes. */
  readonly rssBytes: number;
  /** The model folder it used last, if any. */
  readonly modelDir: string | null;
  /** Every model folder it holds loaded, least recently used first. */
  readonly modelDirs: readonly string[];
  /** Models it has loaded since it started (a reload counts again). */
  readonly engineLoads: number;
  readonly pid: number;
  /** Hosts connected: the VS Code windows sharing it (1 for a child over IPC). */
  readonly clients: number;
}

export interface BuildResult {
  readonly name: string;
  readonly out: string;
  readonly bytes: number;
}

export interface DownloadParams {
  /** "org/name" on the hub. */
  readonly repo: string;
  /** The hub endpoint ('' = HF_ENDPOINT or huggingface.co). */
  readonly endpoint: string;
  /** Names the download in progress notifications and in `cancel`. */
  readonly requestId: string;
}

/** A failure the user should read, with its kind (the error class's name in the worker). */
export interface WorkerErrorData {
  readonly kind: string;
  /** Bad input the user can act on (a UserError in the worker), as opposed to a failure of ours. */
  readonly user: boolean;
}

export const WorkerRequests = {
  /** host -> worker: load (or reuse) a model and report what it is. */
  load: new RequestType<ModelSpec, LoadResult, WorkerErrorData>('engine/load'),
  /** host -> worker: answer a question; text streams back as `WorkerNotifications.text`. */
  ask: new RequestType<AskParams, AskResult, WorkerErrorData>('engine/ask'),
  /** host -> worker: the visual tokens an image makes without reduction (no vision run), for labels. */
  imageTokens: new RequestType<ImageTokensParams, ImageTokens, WorkerErrorData>('engine/imageTokens'),
  /** host -> worker: vision tower and reduction only, for the heatmap. */
  inspect: new RequestType<InspectParams, InspectResult, WorkerErrorData>('engine/inspect'),
  /** host -> worker: forget the conversation and its KV cache. */
  newConversation: new RequestType<ModelSpec, void, WorkerErrorData>('engine/newConversation'),
  /** host -> worker: the heatmap of an image as a PNG (base64), as `prumerge inspect --out` draws it. */
  heatmapPng: new RequestType<InspectParams, string, WorkerErrorData>('engine/heatmapPng'),
  /** host -> worker: its memory in use and the model it holds, for the status bar. */
  stats: new RequestType0<WorkerStats, WorkerErrorData>('worker/stats'),
  /** host -> worker: exit now (Restart the Inference Process, for every window sharing it). */
  shutdown: new RequestType0<void, WorkerErrorData>('worker/shutdown'),
  /** host -> worker: fetch a checkpoint into the hub cache; returns its snapshot folder. */
  download: new RequestType<DownloadParams, string, WorkerErrorData>('hub/download'),
  /** host -> worker: build a model folder from a checkpoint; progress as `buildProgress`. */
  build: new RequestType<BuildParams, BuildResult, WorkerErrorData>('builder/build'),
} as const;

export const WorkerNotifications = {
  /** host -> worker: stop the request with this id at the next token. */
  cancel: new NotificationType<{ readonly requestId: string }>('engine/cancel'),
  /** worker -> host: more answer text for a request. */
  text: new NotificationType<{ readonly requestId: string; readonly delta: string }>('engine/text'),
  /** worker -> host: a request has reached this stage of the pipeline. */
  stage: new NotificationType<{ readonly requestId: string; readonly stage: AskStage }>('engine/stage'),
  /** worker -> host: how far a request's prefill has got. */
  prefill: new NotificationType<{ readonly requestId: string; readonly progress: PrefillProgress }>('engine/prefill'),
  /** worker -> host: how far a download has got. */
  downloadProgress: new NotificationType<{
    readonly requestId: string;
    readonly file: string;
    readonly bytes: number;
    readonly total: number;
    readonly bytesPerSecond: number;
  }>('hub/progress'),
  /** worker -> host: how far a build has got. */
  buildProgress: new NotificationType<{ readonly buildId: string; readonly stage: string; readonly fraction: number }>('builder/progress'),
} as const;

// ---------------------------------------------------------------------------------------------
// Webviews <-> extension host (postMessage). Every message the host receives is checked with
// its guard before anything is done with it: a webview is untrusted input.

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
}

/** One answer in the chat, as the host keeps it and the webview shows it. */
export interface ChatAnswer {
  readonly id: string;
  /** Answers to one question (two when comparing) share a group. */
  readonly group: string;
  readonly question: string;
  readonly reduce: string;
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

/** chat view -> host; `reduce` as parseReduceMode reads it (the guard checks it does) */
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
  | { readonly type: 'showHeatmap'; readonly reduce: string }
  | { readonly type: 'copy'; readonly text: string }
  | { readonly type: 'openLink'; readonly href: string };

/** host -> chat view */
export type ChatEvent =
  | {
      readonly type: 'state';
      readonly image: { readonly name: string; readonly src: string; readonly pasted: boolean } | null;
      readonly model: { readonly name: string; readonly randomWeights: boolean };
      readonly reduce: string;
      /** The attached image's visual tokens with the model in use; null until known. */
      readonly tokens: ImageTokenCount | null;
    }
  | { readonly type: 'answerStart'; readonly id: string; readonly question: string; readonly reduce: string; readonly group: string }
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
  | { readonly type: 'cleared' };

/** heatmap panel -> host; `reduce` as parseReduceMode reads it (the guard checks it does) */
export type HeatmapRequest =
  { readonly type: 'ready' } | { readonly type: 'changeMode'; readonly reduce: string } | { readonly type: 'exportPng' };

/** host -> heatmap panel */
export type HeatmapEvent =
  | { readonly type: 'loading'; readonly reduce: string }
  | { readonly type: 'heatmap'; readonly imageSrc: string; readonly name: string; readonly inspection: InspectResult }
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
      return reduceText(m['reduce']);
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
