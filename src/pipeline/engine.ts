/**
 * The whole pipeline over one model folder:
 *
 *   image -> preprocess -> vision.onnx -> reduce (PruMerge) -> projector.onnx -> visual embeds
 *   (LLaVA-NeXT: an overview and tiles, each through vision.onnx and reduced over its valid patches)
 *   question -> chat template -> token ids (image slot x M) -> embeddings -> decoder.onnx
 *     -> prefill -> decode with the KV cache -> streamed text
 *
 * A follow-up question about the same image continues from the conversation's KV cache: only the
 * new tokens are filled. One request runs at a time; later ones wait their turn. A cancelled
 * request stops at the next stage boundary: between stages, prefill chunks or tokens.
 */
import { messageOf, UserError } from '../common/errors';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { packagePath } from '../common/packagePath';
import { SeededRandom } from '../common/random';
import { EmbeddingTable } from './embeddings';
import { RepetitionGuard, sampleToken, TextStreamer } from './generate';
import { AnyresLayout, anyresLayout, SubImage } from './anyres';
import { insertNewlines, packUnreduced } from './anyresFeatures';
import { ImageGeometry, subImageGeometry } from './imageGeometry';
import { DecoderKvCache, decoderOutputLocations, GrowingKvCache, InPlaceKvCache } from './decoderFeeds';
import { gpuKvSlicer } from './kvSlice';
import { checkExternalData } from './externalData';
import { DECODER_IO, PROJECTOR_IO, VISION_IO } from './graphNames';
import { insideFolder, loadManifest, ModelFolderError, ModelManifest } from './modelManifest';
import { decodeImage, preprocessImage } from './preprocess';
import { preprocessAnyres } from './preprocessAnyres';
import type { PrefillProgress } from './prefillProgress';
import { ChatTurn, PromptBuilder, PromptIds } from './prompt';
import { reduceVisualTokens, Reduction } from './prumerge';
import { VisionTaps } from './visionTaps';
import { formatReduceMode, ReduceMode } from './reduceMode';
import { ExecutionProvider, ExecutionProviderSetting, openSession, runChecked } from './sessions';
import { resolveThreads } from './threads';

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

export interface AskHooks {
  /** Answer text as it is generated, never splitting a character. */
  readonly onText?: (delta: string) => void;
  readonly onStage?: (stage: AskStage) => void;
  /** After each prefill chunk: how much of the prompt is filled, and how fast. */
  readonly onPrefill?: (progress: PrefillProgress) => void;
  /** Aborting stops the request at the next stage boundary, prefill chunk or token. */
  readonly signal?: AbortSignal;
}

/**
 * How a request relates to the conversation: `restarted` when a follow-up was asked but the
 * image file changed (or the reduction did) since the last answer, so it began again.
 */
export type ConversationUse = 'new' | 'continued' | 'restarted';

const DEFAULT_OWNER = '';

/** Conversations (KV caches) held at once: each can be a gigabyte or more at 7B. A third window's question drops the least recently used one. */
export const MAX_CONVERSATIONS = 2;

/** Prompt tokens filled per decoder run: small enough that Stop is honoured within one chunk. */
export const PREFILL_CHUNK = 128;

export interface AskRequest {
  readonly image: string | Uint8Array;
  readonly question: string;
  readonly reduce: ReduceMode;
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
  /** Whose conversation this continues: each window sharing the worker has its own (default: one for all). */
  readonly owner?: string;
  /** Generate exactly maxNewTokens, past end-of-sequence and repetition (benchmarks). */
  readonly fixedLength?: boolean;
}

/** One sub-image's part of the answer's visual tokens (LLaVA-NeXT). */
export interface SubImageTokens {
  readonly kind: SubImage['kind'];
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
  /** LLaVA-NeXT only: per sub-image, overview first. */
  readonly subImages?: SubImageTokens[];
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
  /** onnxruntime's intra-op threads per graph. */
  readonly threads: number;
}

export interface EncodedSubImage {
  readonly kind: SubImage['kind'];
  readonly row: number;
  readonly col: number;
  /** Its patches that unpadding keeps (all for LLaVA-1.5 and the overview). */
  readonly valid: Int32Array;
  readonly reduction: Reduction;
  /** Where its model input came from in the user's image. */
  readonly geometry: ImageGeometry;
}

export interface EncodedImage {
  /** One for LLaVA-1.5; LLaVA-NeXT's overview and tiles. */
  readonly subImages: readonly EncodedSubImage[];
  readonly layout?: AnyresLayout;
  /** Visual tokens without reduction. */
  readonly total: number;
  /** (rows, text hidden) the projected visual tokens, in the order they enter the prompt (empty when not projected). */
  readonly embeds: Float32Array;
  readonly rows: number;
  /** Images the vision tower ran on: 1, or LLaVA-NeXT's overview and every tile (empty ones too). */
  readonly visionRuns: number;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
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
  readonly clsAttention: number[];
  readonly geometry: ImageGeometry;
}

/** One sub-image's reduction in an Inspection. */
export interface SubImageInspection extends GridReduction {
  readonly kind: SubImage['kind'];
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
  readonly timings: EncodedImage['timings'];
  readonly ep: ExecutionProvider;
  /** LLaVA-NeXT only: every sub-image (the fields above are the overview's), and the token totals. */
  readonly subImages?: SubImageInspection[];
  readonly total?: number;
  readonly visualRows?: number;
}

/**
 * How the KV cache is held (src/pipeline/decoderFeeds.ts): `in-place`, fixed buffers each run
 * appends its own positions to (the default on the CPU, for decoders built with `new.*` outputs),
 * or `growing`, the whole cache each run returns (GPUs, where it stays on the device, and older
 * model folders). Both give the same logits to the bit.
 */
export type KvCacheMode = 'in-place' | 'growing';

export interface EngineOptions {
  readonly ep?: ExecutionProviderSetting;
  readonly threads?: number;
  readonly kvCache?: KvCacheMode;
}

export class EngineError extends UserError {
  override readonly name = 'EngineError';
}

/** Thrown inside the engine at a stage boundary once the request's signal is aborted. */
class Cancelled extends Error {}

/** A request that was stopped before it had anything to return (an inspection). */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
}

/** Where a request may stop: throws once its signal is aborted, else reports the stage beginning. */
function cancellationPoint(hooks: AskHooks, stage?: AskStage): void {
  if (hooks.signal?.aborted) throw new Cancelled();
  if (stage) hooks.onStage?.(stage);
}

interface Conversation {
  readonly imageKey: string;
  readonly mode: string;
  readonly image: EncodedImage;
  turns: ChatTurn[];
  /** The ids whose keys and values `cache` holds: always its first `cache.length` positions' ids. */
  ids: number[];
  readonly cache: DecoderKvCache;
}

/** What one request has settled so far, for the result of a request stopped early. */
interface Turn {
  conv?: Conversation;
  use: ConversationUse;
  promptTokens: number;
}

interface Decoded {
  readonly text: string;
  readonly tokens: number[];
  readonly stopReason: StopReason;
}

const now = (): number => performance.now();

export class Engine {
  /** By owner (a window sharing the worker); the least recently used beyond MAX_CONVERSATIONS is forgotten. */
  private readonly conversations = new Map<string, Conversation>();
  /** Cuts KV caches the decoder left on the GPU (WebGPU only), opened at the first cut. */
  private kvSlicer: ReturnType<typeof gpuKvSlicer> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private disposed = false;

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly ep: ExecutionProvider,
    private readonly vision: ort.InferenceSession,
    private readonly projector: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    private readonly table: EmbeddingTable,
    readonly prompt: PromptBuilder,
    /** Why `auto` did not take the providers it tried (or skipped) before `ep`. */
    readonly epFallbacks: readonly string[],
    readonly kvCache: KvCacheMode,
    /** onnxruntime's intra-op threads per graph (threads.ts). */
    readonly threads: number,
  ) {}

  static async load(modelDir: string, options: EngineOptions = {}): Promise<Engine> {
    const dir = resolve(modelDir);
    const m = await loadManifest(dir);
    for (const graph of [m.vision.graph, m.projector.graph, m.decoder.graph])
      await checkExternalData(insideFolder(dir, graph), dir, m.files);
    const setting = options.ep ?? 'auto';
    const threads = resolveThreads(options.threads);
    // whatever opened before a later part failed is released: a long-lived worker retries loads
    const opened: { release(): Promise<void> | void }[] = [];
    const keep = <T extends { release(): Promise<void> | void }>(x: T): T => (opened.push(x), x);
    try {
      const vision = await openSession(insideFolder(dir, m.vision.graph), setting, threads);
      keep(vision.session);
      // the other graphs go straight to the provider the first one got
      const projector = keep((await openSession(insideFolder(dir, m.projector.graph), vision.ep, threads)).session);
      const decoder = keep(
        (
          await openSession(insideFolder(dir, m.decoder.graph), vision.ep, threads, {
            webgpu: { preferredOutputLocation: decoderOutputLocations(m.decoder.numLayers) },
          })
        ).session,
      );
      const table = await EmbeddingTable.open(insideFolder(dir, m.embeddings.file), m.embeddings.shape[0], m.embeddings.shape[1]);
      keep({ release: () => table.close() });
      const prompt = await promptBuilderFor(dir, m);
      const kvCache = kvCacheFor(options.kvCache, vision.ep, decoder);
      return new Engine(dir, m, vision.ep, vision.session, projector, decoder, table, prompt, vision.fallbacks, kvCache, threads);
    } catch (e) {
      await Promise.allSettled(opened.map((x) => x.release()));
      throw e;
    }
  }

  /** Preprocess, vision tower, reduction and projector: everything the image contributes. */
  encodeImage(image: string | Uint8Array, mode: ReduceMode, hooks: AskHooks = {}, project = true): Promise<EncodedImage> {
    return this.manifest.next ? this.encodeAnyres(image, mode, hooks, project) : this.encodeSingle(image, mode, hooks, project);
  }

  /** LLaVA-1.5: one image, one grid. */
  private async encodeSingle(image: string | Uint8Array, mode: ReduceMode, hooks: AskHooks, project: boolean): Promise<EncodedImage> {
    const m = this.manifest;
    cancellationPoint(hooks, 'preprocess');
    let t = now();
    const pre = await preprocessImage(image, { config: m.preprocess });
    const preprocessMs = now() - t;

    cancellationPoint(hooks, 'vision');
    t = now();
    const taps = await this.visionTaps(pre.pixelValues);
    const visionMs = now() - t;

    cancellationPoint(hooks, 'reduce');
    t = now();
    const reduction = reduceVisualTokens(taps, mode);
    const reduceMs = now() - t;

    let embeds: Float32Array = new Float32Array(0);
    let projectorMs = 0;
    if (project) {
      cancellationPoint(hooks, 'projector');
      t = now();
      embeds = await this.project(reduction.features, reduction.rows);
      projectorMs = now() - t;
    }
    const valid = Int32Array.from({ length: m.vision.grid ** 2 }, (_, i) => i);
    return {
      subImages: [{ kind: 'overview', row: 0, col: 0, valid, reduction, geometry: pre.geometry }],
      total: reduction.patches,
      embeds,
      rows: reduction.rows,
      visionRuns: 1,
      timings: { preprocessMs, visionMs, reduceMs, projectorMs },
    };
  }

  /** LLaVA-NeXT: the overview and the tiles, one vision run each (Stop is honoured between them). */
  private async encodeAnyres(image: string | Uint8Array, mode: ReduceMode, hooks: AskHooks, project: boolean): Promise<EncodedImage> {
    const m = this.manifest;
    const next = m.next!;
    cancellationPoint(hooks, 'preprocess');
    let t = now();
    const pre = await preprocessAnyres(image, next.gridPinpoints, m.vision.grid, { config: m.preprocess });
    const { layout } = pre;
    const preprocessMs = now() - t;

    cancellationPoint(hooks, 'vision');
    t = now();
    const plane = 3 * m.vision.imageSize ** 2;
    const taps: VisionTaps[] = [];
    for (let i = 0; i < layout.subImages.length; i++) {
      if (i > 0) cancellationPoint(hooks);
      taps.push(await this.visionTaps(pre.pixelValues.subarray(i * plane, (i + 1) * plane)));
    }
    const visionMs = now() - t;

    cancellationPoint(hooks, 'reduce');
    t = now();
    // a tile that unpadding empties contributes nothing
    const subImages = layout.subImages.flatMap((sub, i) =>
      sub.valid.length === 0
        ? []
        : [{ ...sub, reduction: reduceVisualTokens(taps[i]!, mode, sub.valid), geometry: subImageGeometry(layout, i, pre.source) }],
    );
    const width = m.vision.hiddenSize;
    const packed =
      mode.kind === 'none'
        ? packUnreduced(
            taps.map((x) => x.hidden.subarray(width)),
            layout,
            width,
          )
        : { features: concatRows(subImages.map((s) => s.reduction.features)), plan: undefined };
    const reduceMs = now() - t;

    const rows = packed.plan ? layout.tokens : packed.features.length / width;
    let embeds: Float32Array = new Float32Array(0);
    let projectorMs = 0;
    if (project) {
      cancellationPoint(hooks, 'projector');
      t = now();
      const projected = await this.project(packed.features, packed.features.length / width);
      const h = m.decoder.hiddenSize;
      embeds = packed.plan ? insertNewlines(projected, h, packed.plan, Float32Array.from(next.imageNewline)) : projected;
      projectorMs = now() - t;
    }
    return {
      subImages,
      layout,
      total: layout.tokens,
      embeds,
      rows,
      visionRuns: layout.subImages.length,
      timings: { preprocessMs, visionMs, reduceMs, projectorMs },
    };
  }

  /**
   * vision.onnx on one image or sub-image. (The graph takes a batch, but five sub-images at once
   * measured slower here than one at a time: README, "LLaVA-NeXT".)
   */
  private async visionTaps(pixels: Float32Array): Promise<VisionTaps> {
    const m = this.manifest;
    const size = m.vision.imageSize;
    const out = await runChecked(
      this.vision,
      { [VISION_IO.pixels]: new ort.Tensor('float32', pixels, [1, 3, size, size]) },
      'vision tower',
    );
    return {
      tokens: m.vision.grid * m.vision.grid + 1,
      width: m.vision.hiddenSize,
      hidden: out[VISION_IO.hidden]!.data as Float32Array,
      q: out[VISION_IO.q]!.data as Float32Array,
      k: out[VISION_IO.k]!.data as Float32Array,
    };
  }

  /** projector.onnx: (rows, vision width) -> (rows, text hidden). */
  private async project(features: Float32Array, rows: number): Promise<Float32Array> {
    const width = this.manifest.vision.hiddenSize;
    const proj = await runChecked(
      this.projector,
      { [PROJECTOR_IO.features]: new ort.Tensor('float32', features, [rows, width]) },
      'projector',
    );
    return proj[PROJECTOR_IO.embeds]!.data as Float32Array;
  }

  /** Visual tokens `image` makes without reduction, and the parts the tower reads: no vision run. */
  async imageTokens(image: string | Uint8Array): Promise<{ total: number; subImages: number }> {
    const m = this.manifest;
    if (!m.next) return { total: m.vision.grid ** 2, subImages: 1 };
    const decoded = await decodeImage(image);
    const layout = anyresLayout(decoded.raster, m.next.gridPinpoints, m.preprocess.cropWidth, m.vision.grid);
    return { total: layout.tokens, subImages: layout.subImages.length };
  }

  /**
   * The vision tower and the reduction only: what the heatmap needs. Queued with the answers (the
   * tower would otherwise compete with a prefill for the same cores); an aborted signal rejects
   * with CancelledError, at once if it is still waiting.
   */
  inspect(image: string | Uint8Array, mode: ReduceMode, hooks: Pick<AskHooks, 'signal'> = {}): Promise<Inspection> {
    return this.enqueue(async () => {
      try {
        return await this.inspectNow(image, mode, hooks);
      } catch (e) {
        throw e instanceof Cancelled ? new CancelledError('the inspection was cancelled') : e;
      }
    });
  }

  private async inspectNow(image: string | Uint8Array, mode: ReduceMode, hooks: AskHooks): Promise<Inspection> {
    const encoded = await this.encodeImage(image, mode, hooks, false);
    const subImages = encoded.subImages.map(inspectionOf);
    const overview = encoded.subImages[0]!.reduction;
    return {
      mode: formatReduceMode(overview.mode),
      n: overview.patches,
      ...subImages[0]!,
      grid: this.manifest.vision.grid,
      timings: encoded.timings,
      ep: this.ep,
      ...(encoded.layout ? { subImages, total: encoded.total, visualRows: encoded.rows } : {}),
    };
  }

  /** Answers a question, streaming text to `hooks.onText`; requests run one at a time. */
  ask(request: AskRequest, hooks: AskHooks = {}): Promise<AskResult> {
    return this.enqueue(() => this.askNow(request, hooks));
  }

  /** Requests waiting or running: an engine with none can be unloaded. */
  get pending(): number {
    return this.waiting;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new EngineError('the model was unloaded while the request waited: ask again'));
    this.waiting++;
    const run = this.queue.then(work).finally(() => this.waiting--);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets `owner`'s conversation (its KV cache included). */
  newConversation(owner = DEFAULT_OWNER): void {
    this.forget(owner);
  }

  private forget(owner: string): void {
    this.conversations.get(owner)?.cache.dispose();
    this.conversations.delete(owner);
  }

  private async askNow(request: AskRequest, hooks: AskHooks): Promise<AskResult> {
    const started = now();
    const question = request.question.trim();
    if (!question) throw new EngineError('the question is empty: type what you want to know about the image');
    checkSampling(request);
    const timings: Timings = {
      preprocessMs: 0,
      visionMs: 0,
      reduceMs: 0,
      projectorMs: 0,
      prefillMs: 0,
      ttftMs: 0,
      decodeTokensPerSecond: 0,
    };
    if (!request.followUp) this.forget(request.owner ?? DEFAULT_OWNER); // a new question ends the old conversation, even if it is stopped
    const turn: Turn = { use: 'continued', promptTokens: 0 };
    try {
      const conv = await this.conversationFor(request, turn, hooks, timings);
      const turns = [...conv.turns, { question }];
      const prompt = this.promptFor(turns, conv.image.rows);
      turn.promptTokens = prompt.ids.length;
      const reuse = reusablePrefix(conv.ids, prompt, conv.image.rows);
      const maxNew = Math.min(request.maxNewTokens ?? 256, this.manifest.decoder.maxPositions - prompt.ids.length);
      conv.cache.truncate(reuse);
      conv.cache.reserve(prompt.ids.length); // the answer grows it as it goes: spare capacity slows every token
      const fed = [...prompt.ids]; // the ids the cache is filled with, generated ones appended as they are fed
      let answer: Decoded;
      try {
        const logits = await this.prefill(conv.image, prompt, conv.cache, reuse, hooks, timings);
        answer = await this.decode(request, maxNew, conv.cache, fed, logits, hooks, timings, started);
      } finally {
        // whatever happened (Stop, an error), the ids say what the cache now holds
        conv.ids = fed.slice(0, conv.cache.length);
      }
      conv.turns = [...conv.turns, { question, answer: answer.text }];
      const { text, tokens, stopReason } = answer;
      return this.result(conv, {
        answer: text,
        inputIds: prompt.ids,
        tokens,
        timings,
        stopReason,
        reusedTokens: reuse,
        promptTokens: turn.promptTokens,
        conversation: turn.use,
      });
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
      // stopped before the first token: the transcript is as it was (the cache keeps what was filled, and its ids say so)
      return this.result(turn.conv, {
        answer: '',
        inputIds: [],
        tokens: [],
        timings,
        stopReason: 'cancelled',
        reusedTokens: 0,
        promptTokens: turn.promptTokens,
        conversation: turn.use,
      });
    }
  }

  /** Continues the conversation about this image and reduction, or encodes the image for a new one. */
  private async conversationFor(request: AskRequest, turn: Turn, hooks: AskHooks, timings: Timings): Promise<Conversation> {
    const mode = formatReduceMode(request.reduce);
    const imageKey = await imageKeyOf(request.image);
    const owner = request.owner ?? DEFAULT_OWNER;
    const current = this.conversations.get(owner);
    if (request.followUp && current && current.imageKey === imageKey && current.mode === mode) {
      this.conversations.delete(owner); // most recently used last
      this.conversations.set(owner, current);
      turn.conv = current;
      return current;
    }
    turn.use = request.followUp && current ? 'restarted' : 'new';
    const image = await this.encodeImage(request.image, request.reduce, hooks);
    Object.assign(timings, image.timings);
    const turns = (request.history ?? []).filter((t) => t.answer !== undefined);
    const conv: Conversation = { imageKey, mode, image, turns, ids: [], cache: this.newCache() };
    this.forget(owner);
    this.conversations.set(owner, conv);
    for (const [old] of this.conversations) {
      if (this.conversations.size <= MAX_CONVERSATIONS) break;
      this.forget(old);
    }
    turn.conv = conv;
    return conv;
  }

  private promptFor(turns: readonly ChatTurn[], slots: number): PromptIds {
    const prompt = this.prompt.ids(turns, slots);
    const maxPositions = this.manifest.decoder.maxPositions;
    if (prompt.ids.length >= maxPositions) {
      throw new EngineError(
        `the conversation is ${prompt.ids.length} tokens long, the model takes ${maxPositions}: ask a shorter question or start a new chat`,
      );
    }
    return prompt;
  }

  /** Fills the prompt after the `reuse` cached positions, a chunk at a time; returns the last logits. */
  private async prefill(
    image: EncodedImage,
    prompt: PromptIds,
    cache: DecoderKvCache,
    reuse: number,
    hooks: AskHooks,
    timings: Timings,
  ): Promise<Float32Array> {
    cancellationPoint(hooks, 'prefill');
    const t = now();
    const h = this.manifest.decoder.hiddenSize;
    const slots = image.rows;
    let logits: Float32Array | undefined;
    for (let from = reuse; from < prompt.ids.length; from += PREFILL_CHUNK) {
      if (from > reuse) cancellationPoint(hooks);
      const fill = prompt.ids.slice(from, from + PREFILL_CHUNK);
      const embeds = new Float32Array(fill.length * h);
      for (let i = 0; i < fill.length; i++) {
        const slot = from + i - prompt.imageStart;
        if (slot >= 0 && slot < slots) embeds.set(image.embeds.subarray(slot * h, (slot + 1) * h), i * h);
        else await this.table.lookup([fill[i]!], embeds, i);
      }
      logits = await cache.run(this.decoder, embeds);
      hooks.onPrefill?.({ filled: from + fill.length, total: prompt.ids.length, reused: reuse, elapsedMs: now() - t });
    }
    timings.prefillMs = now() - t;
    return logits!;
  }

  /** Samples tokens until end-of-sequence, the limit, a loop or Stop, streaming their text. */
  private async decode(
    request: AskRequest,
    maxNew: number,
    cache: DecoderKvCache,
    fed: number[],
    prefilled: Float32Array,
    hooks: AskHooks,
    timings: Timings,
    started: number,
  ): Promise<Decoded> {
    cancellationPoint(hooks, 'decode');
    const maxPositions = this.manifest.decoder.maxPositions;
    const rng = new SeededRandom(request.seed ?? 0);
    const sampling = { temperature: request.temperature ?? 0, topP: request.topP ?? 1 };
    // a model of random weights loops at once; a real one may repeat rightly (a table's rule, a row of zeros)
    const guard = this.manifest.randomWeights ? new RepetitionGuard() : undefined;
    const streamer = new TextStreamer((ids) => this.prompt.decode(ids));
    const tokens: number[] = [];
    const one = new Float32Array(this.manifest.decoder.hiddenSize);
    let logits = prefilled;
    let stopReason: StopReason = 'max-tokens';
    let decodeStart = 0;
    while (tokens.length < maxNew) {
      if (hooks.signal?.aborted) {
        if (tokens.length === 0) throw new Cancelled(); // nothing written yet: as if never asked
        stopReason = 'cancelled';
        break;
      }
      const id = sampleToken(logits, sampling, rng);
      if (tokens.length === 0) {
        timings.ttftMs = now() - started;
        decodeStart = now();
      }
      if (id === this.manifest.tokenizer.eosTokenId && !request.fixedLength) {
        stopReason = 'eos';
        break;
      }
      tokens.push(id);
      const delta = streamer.put(id);
      if (delta) hooks.onText?.(delta);
      if (guard?.push(id) && !request.fixedLength) {
        stopReason = 'repetition';
        break;
      }
      if (tokens.length >= maxNew) {
        stopReason = fed.length + 1 >= maxPositions ? 'context-full' : 'max-tokens';
        break;
      }
      await this.table.lookup([id], one);
      fed.push(id);
      logits = await cache.run(this.decoder, one);
    }
    const rest = streamer.end();
    if (rest) hooks.onText?.(rest);
    if (tokens.length > 1) timings.decodeTokensPerSecond = (tokens.length - 1) / ((now() - decodeStart) / 1000);
    if (timings.ttftMs === 0) timings.ttftMs = now() - started;
    return { text: this.prompt.decode(tokens).trim(), tokens, stopReason };
  }

  private result(conv: Conversation | undefined, r: Omit<AskResult, 'visual' | 'ep' | 'threads'>): AskResult {
    const image = conv?.image;
    const { ep, threads } = this;
    if (!image) return { ...r, visual: { total: this.manifest.vision.grid ** 2, kept: 0, indices: [], visionRuns: 0 }, ep, threads };
    const subImages = image.subImages.map((s) => ({ kind: s.kind, row: s.row, col: s.col, kept: Array.from(s.reduction.kept) }));
    const visual: VisualTokens = {
      total: image.total,
      kept: image.rows,
      indices: subImages.flatMap((s) => s.kept),
      visionRuns: image.visionRuns,
      ...(image.layout ? { subImages } : {}),
    };
    return { ...r, visual, ep, threads };
  }

  /** The conversation's KV cache, held as `kvCache` says. */
  private newCache(): DecoderKvCache {
    const run = (session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetches?: Record<string, ort.Tensor | null>) =>
      runChecked(session, feeds, 'language model', fetches);
    const d = this.manifest.decoder;
    if (this.kvCache === 'in-place') return new InPlaceKvCache(d, d.maxPositions, run);
    if (this.ep === 'webgpu') this.kvSlicer ??= gpuKvSlicer('webgpu', d.kvDtype);
    return new GrowingKvCache(d, run, this.kvSlicer);
  }

  /** Refuses new requests, lets the queued ones finish, then releases the sessions. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    for (const owner of [...this.conversations.keys()]) this.forget(owner);
    await Promise.allSettled([
      this.vision.release(),
      this.projector.release(),
      this.decoder.release(),
      this.table.close(),
      this.kvSlicer?.release(),
    ]);
  }
}

function inspectionOf(s: EncodedSubImage): SubImageInspection {
  const r = s.reduction;
  return {
    kind: s.kind,
    row: s.row,
    col: s.col,
    valid: Array.from(s.valid),
    rows: r.rows,
    kept: Array.from(r.kept),
    spatial: Array.from(r.spatial),
    clusters: r.clusters.map((c) => Array.from(c)),
    remainder: r.remainder,
    clsAttention: Array.from(r.clsAttention),
    geometry: s.geometry,
  };
}

/** Sampling settings that would make no token (top-p <= 0, NaN) are refused before any work. */
function checkSampling(r: AskRequest): void {
  const problem = samplingProblem(r);
  if (problem) throw new EngineError(problem);
}

/** What is wrong with a request's sampling and length settings, in one line; undefined when nothing is. */
export function samplingProblem(r: Pick<AskRequest, 'temperature' | 'topP' | 'maxNewTokens' | 'seed'>): string | undefined {
  const { temperature, topP, maxNewTokens, seed } = r;
  if (temperature !== undefined && !(Number.isFinite(temperature) && temperature >= 0))
    return `temperature must be a number of 0 or more (0 is greedy), got ${temperature}`;
  if (topP !== undefined && !(Number.isFinite(topP) && topP > 0 && topP <= 1))
    return `top-p must be a number above 0 and at most 1, got ${topP}`;
  if (maxNewTokens !== undefined && !(Number.isSafeInteger(maxNewTokens) && maxNewTokens >= 1))
    return `the answer's token budget must be a whole number of 1 or more, got ${maxNewTokens}`;
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) return `the seed must be a whole number of 0 or more, got ${seed}`;
  return undefined;
}

/** (rows, width) blocks one after the other. */
function concatRows(blocks: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

function kvCacheFor(asked: KvCacheMode | undefined, ep: ExecutionProvider, decoder: ort.InferenceSession): KvCacheMode {
  const appends = decoder.outputNames.includes(DECODER_IO.newKey(0));
  if (asked === 'in-place') {
    if (ep !== 'cpu') throw new EngineError(`an in-place KV cache needs the CPU provider, not ${ep}`);
    if (!appends) throw new EngineError('this model folder was built before in-place KV caches: build it again with `prumerge build`');
  }
  return asked ?? (ep === 'cpu' && appends ? 'in-place' : 'growing');
}

/**
 * How many leading prompt ids the conversation's cache already holds. At least one token must be
 * filled to get logits, and the image is never split: a cache ending inside it is cut back to its start.
 */
function reusablePrefix(cached: readonly number[], prompt: PromptIds, slots: number): number {
  let reuse = 0;
  while (reuse < cached.length && reuse < prompt.ids.length - 1 && cached[reuse] === prompt.ids[reuse]) reuse++;
  return reuse < prompt.imageStart + slots && reuse > prompt.imageStart ? prompt.imageStart : reuse;
}

/** Names an image's content: a file's path with its size and modification time, or the bytes' hash. */
async function imageKeyOf(image: string | Uint8Array): Promise<string> {
  if (typeof image !== 'string') return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  const path = resolve(image);
  const s = await stat(path).catch(() => undefined); // a missing file is reported by preprocessing
  return s ? `path:${path}:${s.size}:${s.mtimeMs}` : `path:${path}`;
}

/** The tokenizer and chat template of a model folder. */
async function promptBuilderFor(dir: string, m: ModelManifest): Promise<PromptBuilder> {
  const json = async (name: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(insideFolder(dir, name), 'utf8'));
    } catch (e) {
      throw new ModelFolderError(`${name} in ${dir} cannot be read (${messageOf(e)}): rebuild the model`);
    }
  };
  const tokenizerJson = await json(m.tokenizer.file);
  const tokenizerConfig = await json(m.tokenizer.config);
  const tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);
  return new PromptBuilder(tokenizer, m.chatTemplate, {
    bos: m.tokenizer.bosTokenId,
    eos: m.tokenizer.eosTokenId,
    image: m.tokenizer.imageTokenId,
  });
}

/** The default model: the demo that `npm run build` writes to models/demo in the package. */
export function demoModelDir(): string {
  return packagePath('models', 'demo');
}
