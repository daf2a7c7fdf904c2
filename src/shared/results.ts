/**
 * What the engine gives back, as plain JSON values: an answer with its figures, and an image's
 * reduction for the heatmap. The worker sends these to the extension host and the webviews show
 * them, so they live here, apart from the engine (no Node, vscode or onnxruntime import).
 */
import type { ImageGeometry } from './imageGeometry';
import type { Detail, ReduceMode } from './reduceMode';

/** Where the model runs (src/pipeline/runtime/sessions.ts opens the sessions). */
export type ExecutionProvider = 'webgpu' | 'cuda' | 'dml' | 'coreml' | 'cpu';
export type ExecutionProviderSetting = 'auto' | ExecutionProvider;

/** How a LLaVA-NeXT image is cut: the whole image squashed, then the tiles. */
export type SubImageKind = 'overview' | 'tile';

/** One exchange; the image belongs to the first question. */
export interface ChatTurn {
  readonly question: string;
  readonly answer?: string;
}

/** A question as the host, the worker and the engine all take it (the image aside). */
export interface AskSettings {
  readonly question: string;
  readonly reduce: ReduceMode;
  /** How much of the image is read (default `auto`: the model's own layout). */
  readonly detail?: Detail;
  readonly maxNewTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Continue the current conversation about the same image (default: start a new one). */
  readonly followUp?: boolean;
  /**
   * Earlier exchanges about this image that a new conversation begins with (a chat restored after
   * a reload, whose KV cache is gone): the model reads them again with the image.
   */
  readonly history?: readonly ChatTurn[];
}

export interface Timings {
  preprocessMs: number;
  visionMs: number;
  reduceMs: number;
  projectorMs: number;
  prefillMs: number;
  /** From the request to the first generated token. */
  ttftMs: number;
  decodeTokensPerSecond: number;
}

export type StopReason = 'eos' | 'max-tokens' | 'repetition' | 'cancelled' | 'context-full';

/** Where a request is, in pipeline order; reported as each begins. */
export const ASK_STAGES = ['preprocess', 'vision', 'reduce', 'projector', 'prefill', 'decode'] as const;
export type AskStage = (typeof ASK_STAGES)[number];

/**
 * How a request relates to the conversation: `restarted` when a follow-up was asked but the
 * image file changed (or the reduction did) since the last answer, so it began again.
 */
export type ConversationUse = 'new' | 'continued' | 'restarted';

/** One sub-image's part of the answer's visual tokens (LLaVA-NeXT). */
export interface SubImageTokens {
  readonly kind: SubImageKind;
  readonly row: number;
  readonly col: number;
  /** Patch indices (raster order on the sub-image's grid) of its rows, in order. */
  readonly kept: number[];
}

export interface VisualTokens {
  /** Visual tokens without reduction (576 for LLaVA-1.5; LLaVA-NeXT's unpadded count with newlines). */
  readonly total: number;
  /** Rows that reach the language model: the image slots in inputIds. */
  readonly kept: number;
  /** Patch index of each kept patch row, sub-image after sub-image. */
  readonly indices: number[];
  /** Images the vision tower ran on (LLaVA-NeXT: the overview and every tile, also those unpadding empties). */
  readonly visionRuns: number;
  /** Of those, the crops whose tower outputs the worker had kept from an earlier run (absent: 0). */
  readonly visionCached?: number;
  /** The tiled layouts only (LLaVA-NeXT, LLaVA-OneVision): per sub-image, overview first. */
  readonly subImages?: SubImageTokens[];
  /** The picture as decoded, and the side of the square the tower reads (for lowResolutionNote); the first one's, for several. */
  readonly picture?: { readonly width: number; readonly height: number; readonly modelSide: number };
  /** Several images in one question: each one's own counts, in prompt order (the fields above are their sums). */
  readonly images?: readonly VisualTokens[];
}

export interface AskResult {
  readonly answer: string;
  readonly inputIds: number[];
  readonly tokens: number[];
  readonly visual: VisualTokens;
  readonly timings: Timings;
  readonly ep: ExecutionProvider;
  readonly stopReason: StopReason;
  /** Prompt tokens taken from the conversation's KV cache instead of being filled again. */
  readonly reusedTokens: number;
  readonly promptTokens: number;
  readonly conversation: ConversationUse;
  /** `restarted`: what differed from the conversation it would have continued, the image's content or how it is read (reduction, detail). */
  readonly restartedBy?: 'image' | 'reading';
  /** onnxruntime's intra-op threads per graph. */
  readonly threads: number;
}

/** The reduction of one grid of patches, as plain JSON values. */
export interface GridReduction {
  /** M: visual tokens after the reduction. */
  readonly rows: number;
  readonly kept: number[];
  readonly spatial: number[];
  readonly clusters: number[][];
  /** Whether the last row is the attention-weighted sum of the pruned patches. */
  readonly remainder: boolean;
  /** Each patch's score: its CLS attention, or (towers without CLS) the attention it receives. */
  readonly attention: number[];
  readonly score: 'cls' | 'received';
  readonly geometry: ImageGeometry;
  /** The greedy selections (CDPruner, VisPruner, DivPrune): the kept patches in the order chosen. */
  readonly order?: number[];
  /** CDPruner with a question: each patch's relevance to it (0..1 over the image's crops); the heatmap's colour in place of attention. */
  readonly relevance?: number[];
}

/** One sub-image's reduction in an Inspection. */
export interface SubImageInspection extends GridReduction {
  readonly kind: SubImageKind;
  readonly row: number;
  readonly col: number;
  readonly valid: number[];
}

/** What the heatmap shows: the reduction of one image (LLaVA-NeXT: of its overview, and below, of every sub-image). */
export interface Inspection extends GridReduction {
  readonly mode: string;
  /** N: patches on the grid. */
  readonly n: number;
  /** Patches per side. */
  readonly grid: number;
  /**
   * The share of the crop's side the patches cover: 1, or less where the tower's convolution
   * leaves the last pixels unread (SigLIP's 27 patches of 14 px in 384: 378 / 384). Absent: 1.
   */
  readonly gridCoverage?: number;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
  readonly ep: ExecutionProvider;
  /** Crops the tower ran on, and how many of them came from the worker's cache. */
  readonly visionRuns?: number;
  readonly visionCached?: number;
  /** The tiled layouts only (LLaVA-NeXT, LLaVA-OneVision): every sub-image (the fields above are the overview's), and the token totals. */
  readonly subImages?: SubImageInspection[];
  readonly total?: number;
  readonly visualRows?: number;
  /** The question CDPruner weighed the patches by (an inspection for an answer's heatmap). */
  readonly question?: string;
}
