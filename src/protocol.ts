/**
 * The contract between the extension host and the inference worker (JSON-RPC over the child
 * process's IPC channel). Direction is in each name's comment; the worker owns all native memory,
 * the host never loads onnxruntime. Plain JSON values only: no typed arrays cross the channel.
 */
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import type { AskResult, Inspection } from './pipeline/engine';
import type { ExecutionProviderSetting } from './pipeline/sessions';

/** A model to run, as the host names it. */
export interface ModelSpec {
  readonly modelDir: string;
  readonly ep: ExecutionProviderSetting;
}

export interface LoadResult {
  readonly name: string;
  readonly ep: string;
  readonly randomWeights: boolean;
  /** Patches per side of the vision tower's grid. */
  readonly grid: number;
  readonly maxPositions: number;
}

export interface AskParams extends ModelSpec {
  /** Chosen by the host; names the request in `text` notifications and in `cancel`. */
  readonly requestId: string;
  /** Absolute path of the image file. */
  readonly image: string;
  readonly question: string;
  /** none | prumerge | prumerge+ | topk:N */
  readonly reduce: string;
  readonly maxNewTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly followUp?: boolean;
}

export interface InspectParams extends ModelSpec {
  readonly image: string;
  readonly reduce: string;
}

/** The reduction of one image, for the heatmap. */
export type InspectResult = Inspection;

/** A failure the user should read, with its kind (the error class's name in the worker). */
export interface WorkerErrorData {
  readonly kind: string;
}

export const WorkerRequests = {
  /** host -> worker: load (or reuse) a model and report what it is. */
  load: new RequestType<ModelSpec, LoadResult, WorkerErrorData>('engine/load'),
  /** host -> worker: answer a question; text streams back as `WorkerNotifications.text`. */
  ask: new RequestType<AskParams, AskResult, WorkerErrorData>('engine/ask'),
  /** host -> worker: vision tower and reduction only, for the heatmap. */
  inspect: new RequestType<InspectParams, InspectResult, WorkerErrorData>('engine/inspect'),
  /** host -> worker: forget the conversation and its KV cache. */
  newConversation: new RequestType<ModelSpec, void, WorkerErrorData>('engine/newConversation'),
} as const;

export const WorkerNotifications = {
  /** host -> worker: stop the request with this id at the next token. */
  cancel: new NotificationType<{ readonly requestId: string }>('engine/cancel'),
  /** worker -> host: more answer text for a request. */
  text: new NotificationType<{ readonly requestId: string; readonly delta: string }>('engine/text'),
} as const;
