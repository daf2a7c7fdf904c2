/**
 * The contract between the extension host and the inference worker (JSON-RPC over a local socket
 * to the worker every window shares, or the IPC channel of a worker started as a child). Direction is in each name's comment; the worker owns all native memory,
 * the host never loads onnxruntime. Plain JSON values only: no typed arrays cross the channel.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { WeightDtype } from '../format/modelManifest';
import type { PrefillProgress } from '../shared/prefillProgress';
import type { Detail, ReduceMode } from '../shared/reduceMode';
import type { ImageTokenCount } from '../shared/reductionChoices';
import type { AskResult, AskSettings, AskStage, ExecutionProviderSetting, Inspection } from '../shared/results';

/** The worker's reading of an ImageInput: a path as it is, bytes decoded. */
export function imageOf(image: ImageInput): string | Uint8Array {
  return typeof image === 'string' ? image : Buffer.from(image.base64, 'base64');
}

/** A model to run, as the host names it. */
export interface ModelSpec {
  readonly modelDir: string;
  readonly ep: ExecutionProviderSetting;
  /** onnxruntime's threads per graph; 0 or absent: one per physical core (src/pipeline/runtime/threads.ts). */
  readonly threads?: number;
  /** The vision tower's outputs the worker keeps per model for images seen again, MiB (default 256; 0: none). */
  readonly visionCacheMB?: number;
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
  /** The model was trained on several images in one conversation (LLaVA-OneVision, LLaVA-Interleave). */
  readonly severalImages: boolean;
  /** How the tower scores patches: CLS attention (CLIP), or the attention each receives (SigLIP): what `auto` reads by. */
  readonly score: 'cls' | 'received';
}

/**
 * An image as it crosses the channel: an absolute path the worker reads, or the bytes themselves
 * (base64: JSON carries no typed arrays), for images that are not files (VS Code's chat).
 */
export type ImageInput = string | { readonly base64: string };

export interface AskParams extends ModelSpec, AskSettings {
  /** Chosen by the host; names the request in `text` notifications and in `cancel`. */
  readonly requestId: string;
  /** The picture; absent: a question without one. */
  readonly image?: ImageInput;
  /** Several pictures in one question, in order (instead of `image`). */
  readonly images?: readonly ImageInput[];
  /**
   * A request that is a whole conversation (VS Code's language-model API sends the history with
   * every request): answered apart from the window's own conversation, and forgotten after.
   */
  readonly standalone?: boolean;
}

export interface InspectParams extends ModelSpec {
  readonly image: string;
  readonly reduce: ReduceMode;
  readonly detail?: Detail;
  /** The question of the answer whose heatmap this is: CDPruner weighs the patches by it. */
  readonly question?: string;
  /** Names the request in `cancel` (a heatmap whose mode changed drops the run it superseded). */
  readonly requestId?: string;
}

/** An inspection to draw, over the image it is of. */
export interface HeatmapPngParams {
  readonly image: string;
  readonly inspection: Inspection;
}

/** An image to read into the vision cache before a question about it. */
export interface PrepareParams extends ModelSpec {
  readonly image: string;
  readonly detail?: Detail;
  /** Names the reading in `prepareProgress` and in `cancel` (the image was replaced, the chat closed). */
  readonly requestId: string;
}

export interface ImageTokensParams extends ModelSpec {
  readonly image: ImageInput;
  readonly detail?: Detail;
}

/** An image as decoded, before any model reads it: its pixels (an SVG's as rasterised). */
export interface ImageCheck {
  readonly width: number;
  readonly height: number;
  /** The decoder's name for the format: png, jpeg, webp, gif, tiff, heif, svg, bmp. */
  readonly format: string;
}

/** How many visual tokens an image makes without reduction, and in how many parts the tower reads it. */
export type ImageTokens = ImageTokenCount;

/** The reduction of one image, for the heatmap. */
export type InspectResult = Inspection;

export interface BuildParams {
  /** A Hugging Face checkpoint folder. */
  readonly from: string;
  readonly out: string;
  readonly dtype: WeightDtype;
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
  /** The vision tower's kept outputs, over every loaded model: crops held, their bytes, and lookups. */
  readonly visionCache: { readonly crops: number; readonly bytes: number; readonly hits: number; readonly misses: number };
  /** Standalone conversations (VS Code's chat) kept for their next request, over every loaded model, and the positions their KV caches hold. */
  readonly standalone: { readonly conversations: number; readonly positions: number };
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
  /** What a library said (a decoder's message), for the host's log; the message is in the user's words. */
  readonly detail?: string;
}

export const WorkerRequests = {
  /** host -> worker: load (or reuse) a model and report what it is. */
  load: new RequestType<ModelSpec, LoadResult, WorkerErrorData>('engine/load'),
  /** host -> worker: answer a question; text streams back as `WorkerNotifications.text`. */
  ask: new RequestType<AskParams, AskResult, WorkerErrorData>('engine/ask'),
  /** host -> worker: the visual tokens an image makes without reduction (no vision run), for labels. */
  imageTokens: new RequestType<ImageTokensParams, ImageTokens, WorkerErrorData>('engine/imageTokens'),
  /** host -> worker: decode an image (no model), so that one that cannot be read is said so when it is attached. */
  checkImage: new RequestType<{ readonly image: string }, ImageCheck, WorkerErrorData>('image/check'),
  /** host -> worker: read an attached image's crops into the vision cache, crop by crop behind any request; progress as `prepareProgress`. */
  prepare: new RequestType<PrepareParams, { readonly crops: number; readonly cached: number }, WorkerErrorData>('engine/prepare'),
  /** host -> worker: vision tower and reduction only, for the heatmap. */
  inspect: new RequestType<InspectParams, InspectResult, WorkerErrorData>('engine/inspect'),
  /** host -> worker: forget the conversation and its KV cache. */
  newConversation: new RequestType<ModelSpec, void, WorkerErrorData>('engine/newConversation'),
  /** host -> worker: an inspection the host holds drawn over its image as a PNG (base64), as `prumerge inspect --out` draws it; no model runs. */
  heatmapPng: new RequestType<HeatmapPngParams, string, WorkerErrorData>('engine/heatmapPng'),
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
  /** worker -> host: crops of an early reading done, of all the image has. */
  prepareProgress: new NotificationType<{ readonly requestId: string; readonly done: number; readonly total: number }>(
    'engine/prepareProgress',
  ),
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
