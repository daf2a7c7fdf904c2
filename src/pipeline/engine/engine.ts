/**
 * The whole pipeline over one model folder:
 *
 *   image -> preprocess -> vision.onnx -> reduce (PruMerge) -> projector.onnx -> visual embeds   (encodeImage.ts)
 *   question -> chat template -> token ids (image slot x M) -> embeddings -> decoder.onnx
 *     -> prefill -> decode with the KV cache -> streamed text                                  (generation.ts)
 *
 * A follow-up question about the same image continues from the conversation's KV cache: only the
 * new tokens are filled (conversations.ts). One request runs at a time, inspections included;
 * later ones wait their turn. A cancelled request stops at the next stage boundary, prefill
 * chunk or token (stages.ts).
 */
import * as ort from 'onnxruntime-node';
import { UserError } from '../../common/errors';
import { packagePath } from '../../common/packagePath';
import { offeredDetails } from '../../format/visualLayout';
import { Detail, formatReduceMode, ReduceMode } from '../../shared/reduceMode';
import { detailForImages, type ImageTokenCount } from '../../shared/reductionChoices';
import type { AskResult, ChatTurn, ConversationUse, Inspection, Timings, VisualTokens } from '../../shared/results';
import { DecoderKvCache, GrowingKvCache, InPlaceKvCache } from '../kv/decoderFeeds';
import { gpuKvSlicer } from '../kv/kvSlice';
import { runChecked } from '../runtime/sessions';
import type { PromptIds } from '../text/prompt';
import { Conversation, Conversations, DEFAULT_OWNER, imageKeyOf, reusablePrefix } from './conversations';
import { EncodedImage, ImageEncoder } from './encodeImage';
import { Decoded, Generation } from './generation';
import { inspectionOf } from './inspection';
import { openModel, OpenedModel } from './openModel';
import { AskRequest, checkRequest, EngineError, EngineOptions, imagesOf } from './request';
import { AskHooks, Cancelled, CancelledError, now } from './stages';
import { DEFAULT_VISION_CACHE_BYTES, VisionCache } from './visionCache';

/** How one request uses its owner's conversation (and why it restarted), and its prompt's size: a request stopped early reports them too. */
interface ConversationChoice {
  conv?: Conversation;
  use: ConversationUse;
  restartedBy?: 'image' | 'reading';
  promptTokens: number;
}

/** What the result says of how the request used the conversation. */
function usedAs(choice: ConversationChoice): Pick<AskResult, 'promptTokens' | 'conversation' | 'restartedBy'> {
  return {
    promptTokens: choice.promptTokens,
    conversation: choice.use,
    ...(choice.restartedBy ? { restartedBy: choice.restartedBy } : {}),
  };
}

export class Engine {
  readonly dir: string;
  readonly manifest: OpenedModel['manifest'];
  readonly ep: OpenedModel['ep'];
  readonly epFallbacks: readonly string[];
  readonly prompt: OpenedModel['prompt'];
  readonly kvCache: OpenedModel['kvCache'];
  readonly threads: number;
  private readonly encoder: ImageEncoder;
  private readonly conversations = new Conversations();
  /** Cuts KV caches the decoder left on the GPU (WebGPU only), opened at the first cut. */
  private kvSlicer: ReturnType<typeof gpuKvSlicer> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private disposed = false;

  private constructor(
    private readonly model: OpenedModel,
    visionCacheBytes: number,
  ) {
    ({ dir: this.dir, manifest: this.manifest, ep: this.ep, epFallbacks: this.epFallbacks, prompt: this.prompt } = model);
    ({ kvCache: this.kvCache, threads: this.threads } = model);
    this.encoder = new ImageEncoder(model.manifest, model.vision, model.projector, new VisionCache(visionCacheBytes));
  }

  static async load(modelDir: string, options: EngineOptions = {}): Promise<Engine> {
    return new Engine(await openModel(modelDir, options), options.visionCacheBytes ?? DEFAULT_VISION_CACHE_BYTES);
  }

  /** The vision tower's outputs kept for crops seen again. */
  get visionCache(): VisionCache {
    return this.encoder.cache;
  }

  /** Preprocess, vision tower, reduction and (unless `project` is false) projector: everything the image contributes. */
  encodeImage(
    image: string | Uint8Array,
    mode: ReduceMode,
    hooks: AskHooks = {},
    project = true,
    detail: Detail = 'auto',
    question?: Float64Array,
  ): Promise<EncodedImage> {
    return this.encoder.encode(image, mode, hooks, project, detail, question);
  }

  /**
   * The mean of the embedding rows of the question's own tokens (no template, no special tokens):
   * what CDPruner weighs the image's patches by (docs/reductions.md).
   */
  async questionEmbedding(question: string): Promise<Float64Array | undefined> {
    const ids = this.prompt.tokenizer.encode(question, { add_special_tokens: false }).ids;
    if (ids.length === 0) return undefined;
    const { table } = this.model;
    const rows = new Float32Array(ids.length * table.hiddenSize);
    await table.lookup(ids, rows);
    const mean = new Float64Array(table.hiddenSize);
    for (let i = 0; i < ids.length; i++) for (let c = 0; c < mean.length; c++) mean[c] = mean[c]! + rows[i * mean.length + c]! / ids.length;
    return mean;
  }

  /**
   * Visual tokens `image` makes without reduction, and the parts the tower reads: no vision run.
   * For a tiled model's own layout, also the same at medium detail; and the tower's time per
   * crop on this machine once it has run, for the picker's estimate.
   */
  async imageTokens(image: string | Uint8Array, detail: Detail = 'auto'): Promise<ImageTokenCount> {
    const count = await this.encoder.imageTokens(image, detail);
    const ms = this.encoder.msPerCrop;
    return { ...count, ...(ms !== undefined ? { msPerCrop: Math.round(ms) } : {}) };
  }

  /**
   * The vision tower and the reduction only: what the heatmap needs. Queued with the answers (the
   * tower would otherwise compete with a prefill for the same cores); an aborted signal rejects
   * with CancelledError, at once if it is still waiting. `question`: the one an answer asked, which
   * CDPruner weighs the patches by, as the answer's own reading did.
   */
  inspect(
    image: string | Uint8Array,
    mode: ReduceMode,
    hooks: Pick<AskHooks, 'signal'> = {},
    detail: Detail = 'auto',
    question?: string,
  ): Promise<Inspection> {
    return this.enqueue(async () => {
      try {
        const { grid, patchSize, imageSize } = this.manifest.vision;
        const asking = mode.kind === 'cdpruner' && question ? await this.questionEmbedding(question) : undefined;
        const encoded = await this.encodeImage(image, mode, hooks, false, detail, asking);
        return inspectionOf(encoded, grid, this.ep, (grid * patchSize) / imageSize, asking ? question : undefined);
      } catch (e) {
        throw e instanceof Cancelled ? new CancelledError('the inspection was cancelled') : e;
      }
    });
  }

  /**
   * Reads an image's crops into the vision cache before any question about it (the chat does this
   * when an image is attached), so that the question finds them read. One crop per turn in the
   * queue: a request that arrives meanwhile waits for the crop being read at most, never for the
   * rest. An aborted signal (the image replaced, the chat closed) drops the crops not yet read.
   */
  async prepare(
    image: string | Uint8Array,
    detail: Detail = 'auto',
    hooks: { readonly signal?: AbortSignal; readonly onCrop?: (done: number, total: number) => void } = {},
  ): Promise<{ crops: number; cached: number }> {
    const turn = <T>(work: () => Promise<T>): Promise<T> =>
      this.enqueue(() => {
        if (hooks.signal?.aborted) throw new CancelledError('the early reading of the image was cancelled');
        return work();
      });
    const crops = await turn(() => this.encoder.cropPixels(image, detail));
    let cached = 0;
    for (let i = 0; i < crops.length; i++) {
      if (await turn(() => this.encoder.readCrop(crops[i]!))) cached++;
      hooks.onCrop?.(i + 1, crops.length);
    }
    return { crops: crops.length, cached };
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

  /** The standalone conversations kept for reuse, and the positions their KV caches hold. */
  get standaloneKept(): { readonly conversations: number; readonly positions: number } {
    return this.conversations.standaloneKept;
  }

  /** Forgets `owner`'s conversation (its KV cache included). */
  newConversation(owner = DEFAULT_OWNER): void {
    this.conversations.forget(owner);
  }

  private async askNow(request: AskRequest, hooks: AskHooks): Promise<AskResult> {
    const started = now();
    const question = checkRequest(request);
    const timings: Timings = {
      preprocessMs: 0,
      visionMs: 0,
      reduceMs: 0,
      projectorMs: 0,
      prefillMs: 0,
      ttftMs: 0,
      decodeTokensPerSecond: 0,
    };
    // a new question ends the old conversation, even if it is stopped
    if (!request.followUp && !request.standalone) this.conversations.forget(request.owner ?? DEFAULT_OWNER);
    const choice: ConversationChoice = { use: 'continued', promptTokens: 0 };
    try {
      const conv = await this.conversationFor(request, question, choice, hooks, timings);
      const prompt = this.promptFor(
        [...conv.turns, { question }],
        conv.images.map((i) => i.rows),
      );
      choice.promptTokens = prompt.ids.length;
      const reuse = reusablePrefix(conv.ids, prompt);
      const maxNew = Math.min(request.maxNewTokens ?? 256, this.manifest.decoder.maxPositions - prompt.ids.length);
      conv.cache.truncate(reuse);
      conv.cache.reserve(prompt.ids.length); // the answer grows it as it goes: spare capacity slows every token
      const generation = new Generation(this.model, conv.cache, prompt, hooks, timings, started);
      let answer: Decoded;
      try {
        answer = await generation.decode(request, maxNew, await generation.prefill(conv.images, reuse));
      } finally {
        // whatever happened (Stop, an error), the ids say what the cache now holds
        conv.ids = generation.fed.slice(0, conv.cache.length);
      }
      conv.turns = [...conv.turns, { question, answer: answer.text }];
      const { text, tokens, stopReason } = answer;
      const r = { answer: text, inputIds: prompt.ids, tokens, timings, stopReason, reusedTokens: reuse };
      return this.result(conv, { ...r, ...usedAs(choice) });
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
      // stopped before the first token: the transcript is as it was (the cache keeps what was filled, and its ids say so)
      const r = { answer: '', inputIds: [], tokens: [], timings, stopReason: 'cancelled' as const, reusedTokens: 0 };
      return this.result(choice.conv, { ...r, ...usedAs(choice) });
    } finally {
      // whatever happened, its cache and ids agree: the next request of that conversation may continue it
      if (request.standalone && choice.conv)
        this.conversations.keepStandalone(choice.conv, (c) => c.cache.length * this.kvBytesPerPosition);
    }
  }

  /** Bytes of KV cache per position held: keys and values of every layer. */
  private get kvBytesPerPosition(): number {
    const d = this.manifest.decoder;
    return d.numLayers * 2 * d.numKvHeads * d.headDim * (d.kvDtype === 'float16' ? 2 : 4);
  }

  /**
   * A standalone request (the whole conversation in each: VS Code's chat) continues the kept
   * conversation about the same images, read the same way, whose cached ids share the longest
   * prefix with its prompt; an edited earlier turn shares less and is filled again from there.
   */
  private keptStandalone(question: string, imageKey: string, mode: string, turns: readonly ChatTurn[]): Conversation | undefined {
    const kept = this.conversations.takeStandalone((c) => {
      if (c.imageKey !== imageKey || c.mode !== mode) return 0;
      return reusablePrefix(
        c.ids,
        this.prompt.ids(
          [...turns, { question }],
          c.images.map((i) => i.rows),
        ),
      );
    });
    if (kept) kept.turns = [...turns];
    return kept;
  }

  /** Continues the conversation about these images and reduction, or encodes the images for a new one. */
  private async conversationFor(
    request: AskRequest,
    question: string,
    choice: ConversationChoice,
    hooks: AskHooks,
    timings: Timings,
  ): Promise<Conversation> {
    const inputs = imagesOf(request, this.manifest.name);
    // several images: OneVision reads each as one padded crop, as it was trained to (docs/architecture.md, "Several images")
    const asked = request.detail ?? 'auto';
    const detail = detailForImages(asked, inputs.length, offeredDetails(this.manifest.layout));
    // a conversation continues only with the images read the same way
    const mode = formatReduceMode(request.reduce) + (detail !== 'auto' ? ` (${detail} detail)` : '');
    const imageKey = inputs.length === 0 ? 'none' : (await Promise.all(inputs.map(imageKeyOf))).join('\n');
    const turns: ChatTurn[] = (request.history ?? []).filter((t) => t.answer !== undefined);
    if (request.standalone) {
      const kept = this.keptStandalone(question, imageKey, mode, turns);
      if (kept) return (choice.conv = kept);
    }
    const owner = request.owner ?? DEFAULT_OWNER;
    const current = this.conversations.peek(owner);
    if (request.followUp && current && current.imageKey === imageKey && current.mode === mode) {
      choice.conv = this.conversations.use(owner);
      return current;
    }
    choice.use = request.followUp && current && !request.standalone ? 'restarted' : 'new';
    if (choice.use === 'restarted') choice.restartedBy = current!.imageKey !== imageKey ? 'image' : 'reading';
    const images: EncodedImage[] = [];
    // CDPruner chooses for this question: the conversation's later questions read these rows
    const asking = request.reduce.kind === 'cdpruner' ? await this.questionEmbedding(question) : undefined;
    for (const [i, input] of inputs.entries()) {
      const image = await this.encodeImage(input, request.reduce, hooks, true, detail, asking).catch((e: unknown) => {
        // which of several could not be read, in the error's own kind (the host words image errors by it)
        if (inputs.length > 1 && e instanceof UserError) e.message = `image ${i + 1} of ${inputs.length}: ${e.message}`;
        throw e;
      });
      images.push(image);
      for (const k of ['preprocessMs', 'visionMs', 'reduceMs', 'projectorMs'] as const) timings[k] += image.timings[k];
    }
    const conv: Conversation = { imageKey, mode, images, turns, ids: [], cache: this.newCache() };
    if (!request.standalone) this.conversations.start(owner, conv);
    choice.conv = conv;
    return conv;
  }

  private promptFor(turns: readonly ChatTurn[], slots: readonly number[]): PromptIds {
    const prompt = this.prompt.ids(turns, slots);
    const maxPositions = this.manifest.decoder.maxPositions;
    if (prompt.ids.length >= maxPositions) {
      throw new EngineError(
        `the conversation is ${prompt.ids.length} tokens long, the model takes ${maxPositions}: ask a shorter question or start a new chat`,
      );
    }
    return prompt;
  }

  private result(conv: Conversation | undefined, r: Omit<AskResult, 'visual' | 'ep' | 'threads'>): AskResult {
    const { ep, threads } = this;
    // stopped before it had a conversation: nothing was read of the image it was about
    if (!conv) return { ...r, visual: { total: this.manifest.vision.grid ** 2, kept: 0, indices: [], visionRuns: 0 }, ep, threads };
    const images = conv.images;
    // a question without a picture
    if (images.length === 0) return { ...r, visual: { total: 0, kept: 0, indices: [], visionRuns: 0 }, ep, threads };
    const each = images.map((image) => this.visualTokens(image));
    if (each.length === 1) return { ...r, visual: each[0]!, ep, threads };
    const sum = (f: (v: VisualTokens) => number): number => each.reduce((n, v) => n + f(v), 0);
    const visual: VisualTokens = {
      ...each[0]!,
      total: sum((v) => v.total),
      kept: sum((v) => v.kept),
      indices: each.flatMap((v) => v.indices),
      visionRuns: sum((v) => v.visionRuns),
      visionCached: sum((v) => v.visionCached ?? 0),
      images: each,
    };
    return { ...r, visual, ep, threads };
  }

  /** One image's part of the answer's visual tokens. */
  private visualTokens(image: EncodedImage): VisualTokens {
    const subImages = image.subImages.map((s) => ({ kind: s.kind, row: s.row, col: s.col, kept: Array.from(s.reduction.kept) }));
    const source = image.subImages[0]?.geometry.raster; // what was decoded: an SVG is rasterised large
    return {
      total: image.total,
      kept: image.rows,
      indices: subImages.flatMap((s) => s.kept),
      visionRuns: image.visionRuns,
      ...(image.visionRuns > 0 ? { visionCached: image.visionCached } : {}),
      ...(image.layout ? { subImages } : {}),
      ...(source ? { picture: { width: source.width, height: source.height, modelSide: this.manifest.vision.imageSize } } : {}),
    };
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
    this.conversations.forgetAll();
    this.encoder.cache.clear();
    const m = this.model;
    await Promise.allSettled([m.vision.release(), m.projector.release(), m.decoder.release(), m.table.close(), this.kvSlicer?.release()]);
  }
}

/** The default model: the demo that `npm run build` writes to models/demo in the package. */
export function demoModelDir(): string {
  return packagePath('models', 'demo');
}
