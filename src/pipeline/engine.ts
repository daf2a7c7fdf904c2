/**
 * The whole pipeline over one model folder:
 *
 *   image -> preprocess -> vision.onnx -> reduce (PruMerge) -> projector.onnx -> visual embeds
 *   question -> chat template -> token ids (image slot x M) -> embeddings -> decoder.onnx
 *     -> prefill -> decode with the KV cache -> streamed text
 *
 * A follow-up question about the same image continues from the conversation's KV cache: only the
 * new tokens are filled. One request runs at a time; later ones wait their turn. A cancelled
 * request stops at the next stage boundary: between stages, prefill chunks or tokens.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { packagePath } from '../common/packagePath';
import { SeededRandom } from '../common/random';
import { EmbeddingTable } from './embeddings';
import { RepetitionGuard, sampleToken, TextStreamer } from './generate';
import { ImageGeometry } from './imageGeometry';
import { checkExternalData } from './externalData';
import { insideFolder, loadManifest, ModelManifest } from './modelManifest';
import { preprocessImage } from './preprocess';
import { ChatTurn, PromptBuilder } from './prompt';
import { reduceVisualTokens, Reduction } from './prumerge';
import { formatReduceMode, ReduceMode } from './reduceMode';
import { ExecutionProvider, ExecutionProviderSetting, openSession, runChecked } from './sessions';

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
  /** Aborting stops the request at the next stage boundary, prefill chunk or token. */
  readonly signal?: AbortSignal;
}

/**
 * How a request relates to the conversation: `restarted` when a follow-up was asked but the
 * image file changed (or the reduction did) since the last answer, so it began again.
 */
export type ConversationUse = 'new' | 'continued' | 'restarted';

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
  /** Generate exactly maxNewTokens, past end-of-sequence and repetition (benchmarks). */
  readonly fixedLength?: boolean;
}

export interface AskResult {
  readonly answer: string;
  readonly inputIds: number[];
  readonly tokens: number[];
  readonly visual: { readonly total: number; readonly kept: number; readonly indices: number[] };
  readonly timings: Timings;
  readonly ep: ExecutionProvider;
  readonly stopReason: StopReason;
  /** Prompt tokens taken from the conversation's KV cache instead of being filled again. */
  readonly reusedTokens: number;
  readonly promptTokens: number;
  readonly conversation: ConversationUse;
}

export interface EncodedImage {
  readonly reduction: Reduction;
  readonly geometry: ImageGeometry;
  /** (rows, text hidden) the projected visual tokens, in the order they enter the prompt. */
  readonly embeds: Float32Array;
  readonly timings: Pick<Timings, 'preprocessMs' | 'visionMs' | 'reduceMs' | 'projectorMs'>;
}

/** What the heatmap shows: the reduction of one image, as plain JSON values. */
export interface Inspection {
  readonly mode: string;
  /** N: patches on the grid. */
  readonly n: number;
  /** M: visual tokens after the reduction. */
  readonly rows: number;
  readonly kept: number[];
  readonly spatial: number[];
  readonly clusters: number[][];
  readonly clsAttention: number[];
  readonly geometry: ImageGeometry;
  /** Patches per side. */
  readonly grid: number;
  readonly timings: EncodedImage['timings'];
  readonly ep: ExecutionProvider;
}

export class EngineError extends Error {
  override readonly name = 'EngineError';
}

/** Thrown inside the engine at a stage boundary once the request's signal is aborted. */
class Cancelled extends Error {}

function checkpoint(hooks: AskHooks, stage?: AskStage): void {
  if (hooks.signal?.aborted) throw new Cancelled();
  if (stage) hooks.onStage?.(stage);
}

interface Conversation {
  readonly imageKey: string;
  readonly mode: string;
  readonly image: EncodedImage;
  turns: ChatTurn[];
  /** The ids whose keys and values `cache` holds. */
  ids: number[];
  cache: Record<string, ort.Tensor> | undefined;
}

const now = (): number => performance.now();

export class Engine {
  private conversation: Conversation | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly ep: ExecutionProvider,
    private readonly vision: ort.InferenceSession,
    private readonly projector: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    private readonly table: EmbeddingTable,
    readonly prompt: PromptBuilder,
  ) {}

  static async load(modelDir: string, options: { ep?: ExecutionProviderSetting; threads?: number } = {}): Promise<Engine> {
    const dir = resolve(modelDir);
    const m = await loadManifest(dir);
    for (const graph of [m.vision.graph, m.projector.graph, m.decoder.graph]) await checkExternalData(insideFolder(dir, graph), dir, m.files);
    const setting = options.ep ?? 'auto';
    const vision = await openSession(insideFolder(dir, m.vision.graph), setting, options.threads);
    // the other graphs go straight to the provider the first one got
    const projector = await openSession(insideFolder(dir, m.projector.graph), vision.ep, options.threads);
    const decoder = await openSession(insideFolder(dir, m.decoder.graph), vision.ep, options.threads);
    const table = await EmbeddingTable.open(insideFolder(dir, m.embeddings.file), m.embeddings.shape[0], m.embeddings.shape[1]);
    const tokenizerJson: unknown = JSON.parse(await readFile(insideFolder(dir, m.tokenizer.file), 'utf8'));
    const tokenizerConfig: unknown = JSON.parse(await readFile(insideFolder(dir, m.tokenizer.config), 'utf8'));
    const tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);
    const prompt = new PromptBuilder(tokenizer, m.chatTemplate, { bos: m.tokenizer.bosTokenId, eos: m.tokenizer.eosTokenId, image: m.tokenizer.imageTokenId });
    return new Engine(dir, m, vision.ep, vision.session, projector.session, decoder.session, table, prompt);
  }

  /** Preprocess, vision tower, reduction and projector: everything the image contributes. */
  async encodeImage(image: string | Uint8Array, mode: ReduceMode, hooks: AskHooks = {}): Promise<EncodedImage> {
    const m = this.manifest;
    checkpoint(hooks, 'preprocess');
    let t = now();
    const pre = await preprocessImage(image, { config: m.preprocess });
    const preprocessMs = now() - t;

    checkpoint(hooks, 'vision');
    t = now();
    const size = m.vision.imageSize;
    const out = await runChecked(this.vision, { pixel_values: new ort.Tensor('float32', pre.pixelValues, [1, 3, size, size]) }, 'vision tower');
    const tokens = m.vision.grid * m.vision.grid + 1;
    const taps = {
      tokens,
      width: m.vision.hiddenSize,
      hidden: out['hidden']!.data as Float32Array,
      q: out['q']!.data as Float32Array,
      k: out['k']!.data as Float32Array,
    };
    const visionMs = now() - t;

    checkpoint(hooks, 'reduce');
    t = now();
    const reduction = reduceVisualTokens(taps, mode);
    const reduceMs = now() - t;

    checkpoint(hooks, 'projector');
    t = now();
    const proj = await runChecked(this.projector, { image_features: new ort.Tensor('float32', reduction.features, [reduction.rows, reduction.width]) }, 'projector');
    const projectorMs = now() - t;
    return { reduction, geometry: pre.geometry, embeds: proj['image_embeds']!.data as Float32Array, timings: { preprocessMs, visionMs, reduceMs, projectorMs } };
  }

  /** The vision tower and the reduction only: what the heatmap needs. */
  async inspect(image: string | Uint8Array, mode: ReduceMode): Promise<Inspection> {
    const { reduction: r, geometry, timings } = await this.encodeImage(image, mode);
    return {
      mode: formatReduceMode(r.mode),
      n: r.patches,
      rows: r.rows,
      kept: Array.from(r.kept),
      spatial: Array.from(r.spatial),
      clusters: r.clusters.map((c) => Array.from(c)),
      clsAttention: Array.from(r.clsAttention),
      geometry,
      grid: this.manifest.vision.grid,
      timings,
      ep: this.ep,
    };
  }

  /** Answers a question, streaming text to `hooks.onText`; requests run one at a time. */
  ask(request: AskRequest, hooks: AskHooks = {}): Promise<AskResult> {
    const run = this.queue.then(() => this.askNow(request, hooks));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets the conversation (its KV cache included). */
  newConversation(): void {
    this.conversation = undefined;
  }

  private async askNow(request: AskRequest, hooks: AskHooks): Promise<AskResult> {
    const started = now();
    const question = request.question.trim();
    if (!question) throw new EngineError('the question is empty: type what you want to know about the image');
    const mode = formatReduceMode(request.reduce);
    const imageKey = await imageKeyOf(request.image);
    const timings: Timings = { preprocessMs: 0, visionMs: 0, reduceMs: 0, projectorMs: 0, prefillMs: 0, ttftMs: 0, decodeTokensPerSecond: 0 };

    if (!request.followUp) this.conversation = undefined; // a new question ends the old conversation, even if it is stopped
    let conv = this.conversation;
    let use: ConversationUse = 'continued';
    let promptTokens = 0;
    try {
      if (!request.followUp || !conv || conv.imageKey !== imageKey || conv.mode !== mode) {
        use = request.followUp && conv ? 'restarted' : 'new';
        conv = undefined;
        const image = await this.encodeImage(request.image, request.reduce, hooks);
        Object.assign(timings, image.timings);
        conv = { imageKey, mode, image, turns: [], ids: [], cache: undefined };
        this.conversation = conv;
      }
      const turns = [...conv.turns, { question }];
      const slots = conv.image.reduction.rows;
      const prompt = this.prompt.ids(turns, slots);
      promptTokens = prompt.ids.length;
      const maxPositions = this.manifest.decoder.maxPositions;
      if (prompt.ids.length >= maxPositions) {
        throw new EngineError(
          `the conversation is ${prompt.ids.length} tokens long, the model takes ${maxPositions}: ask a shorter question or start a new chat`,
        );
      }
      const maxNew = Math.min(request.maxNewTokens ?? 256, maxPositions - prompt.ids.length);

      // reuse the longest cached prefix; at least one token must be filled to get logits
      let reuse = 0;
      while (reuse < conv.ids.length && reuse < prompt.ids.length - 1 && conv.ids[reuse] === prompt.ids[reuse]) reuse++;
      if (reuse < prompt.imageStart + slots && reuse > prompt.imageStart) reuse = prompt.imageStart; // never split the image
      let cache = reuse > 0 ? truncateCache(conv.cache!, reuse, this.manifest.decoder.numLayers) : undefined;

      // prefill, a chunk at a time; the conversation keeps its old cache until the answer is done
      checkpoint(hooks, 'prefill');
      const t = now();
      const h = this.manifest.decoder.hiddenSize;
      let step: { logits: Float32Array; cache: Record<string, ort.Tensor> } | undefined;
      for (let from = reuse; from < prompt.ids.length; from += PREFILL_CHUNK) {
        if (from > reuse) checkpoint(hooks);
        const fill = prompt.ids.slice(from, from + PREFILL_CHUNK);
        const embeds = new Float32Array(fill.length * h);
        for (let i = 0; i < fill.length; i++) {
          const slot = from + i - prompt.imageStart;
          if (slot >= 0 && slot < slots) embeds.set(conv.image.embeds.subarray(slot * h, (slot + 1) * h), i * h);
          else await this.table.lookup([fill[i]!], embeds, i);
        }
        step = await this.step(embeds, cache, from);
        cache = step.cache;
      }
      timings.prefillMs = now() - t;

      // decode
      checkpoint(hooks, 'decode');
      const rng = new SeededRandom(request.seed ?? 0);
      const sampling = { temperature: request.temperature ?? 0, topP: request.topP ?? 1 };
      const guard = new RepetitionGuard();
      const streamer = new TextStreamer((ids) => this.prompt.decode(ids));
      const tokens: number[] = [];
      const fed = [...prompt.ids];
      let stopReason: StopReason = 'max-tokens';
      let decodeStart = 0;
      const one = new Float32Array(h);
      while (tokens.length < maxNew) {
        if (hooks.signal?.aborted) {
          if (tokens.length === 0) throw new Cancelled(); // nothing written yet: as if never asked
          stopReason = 'cancelled';
          break;
        }
        const id = sampleToken(step!.logits, sampling, rng);
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
        if (guard.push(id) && !request.fixedLength) {
          stopReason = 'repetition';
          break;
        }
        if (tokens.length >= maxNew) {
          stopReason = fed.length + 1 >= maxPositions ? 'context-full' : 'max-tokens';
          break;
        }
        await this.table.lookup([id], one);
        step = await this.step(one, cache, fed.length);
        cache = step.cache;
        fed.push(id);
      }
      const rest = streamer.end();
      if (rest) hooks.onText?.(rest);
      if (tokens.length > 1) timings.decodeTokensPerSecond = (tokens.length - 1) / ((now() - decodeStart) / 1000);
      if (timings.ttftMs === 0) timings.ttftMs = now() - started;

      const answer = this.prompt.decode(tokens).trim();
      conv.turns = [...turns.slice(0, -1), { question, answer }];
      conv.ids = fed;
      conv.cache = cache;
      return this.result(conv, { answer, inputIds: prompt.ids, tokens, timings, stopReason, reusedTokens: reuse, promptTokens, conversation: use });
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
      // stopped before the first token: the conversation is as it was before the question
      return this.result(conv, { answer: '', inputIds: [], tokens: [], timings, stopReason: 'cancelled', reusedTokens: 0, promptTokens, conversation: use });
    }
  }

  private result(conv: Conversation | undefined, r: Omit<AskResult, 'visual' | 'ep'>): AskResult {
    const red = conv?.image.reduction;
    const visual = red ? { total: red.patches, kept: red.rows, indices: Array.from(red.kept) } : { total: this.manifest.vision.grid ** 2, kept: 0, indices: [] };
    return { ...r, visual, ep: this.ep };
  }

  /** One decoder run on `embeds` (S, hidden) after `past` cached positions. */
  private async step(embeds: Float32Array, cache: Record<string, ort.Tensor> | undefined, past: number): Promise<{ logits: Float32Array; cache: Record<string, ort.Tensor> }> {
    const d = this.manifest.decoder;
    const s = embeds.length / d.hiddenSize;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', embeds, [1, s, d.hiddenSize]),
      seqlens_k: new ort.Tensor('int32', Int32Array.of(past + s - 1), [1]),
      total_sequence_length: new ort.Tensor('int32', Int32Array.of(past + s), []),
    };
    for (let i = 0; i < d.numLayers; i++) {
      feeds[`past_key_values.${i}.key`] = cache?.[`present.${i}.key`] ?? emptyKv(d.kvDtype, d.numKvHeads, d.headDim);
      feeds[`past_key_values.${i}.value`] = cache?.[`present.${i}.value`] ?? emptyKv(d.kvDtype, d.numKvHeads, d.headDim);
    }
    const out = await runChecked(this.decoder, feeds, 'language model');
    return { logits: out['logits']!.data as Float32Array, cache: out };
  }

  async dispose(): Promise<void> {
    this.conversation = undefined;
    await Promise.allSettled([this.vision.release(), this.projector.release(), this.decoder.release(), this.table.close()]);
  }
}

function emptyKv(type: 'float32' | 'float16', heads: number, headDim: number): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', new Uint16Array(0), [1, heads, 0, headDim])
    : new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
}

/** The first `length` positions of every present.* tensor (1, kv, T, d). */
function truncateCache(cache: Record<string, ort.Tensor>, length: number, layers: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const name of [`present.${i}.key`, `present.${i}.value`]) {
      const t = cache[name]!;
      const [b, heads, total, d] = t.dims as [number, number, number, number];
      if (total === length) {
        out[name] = t;
        continue;
      }
      const src = t.data as Float32Array | Uint16Array;
      const dst = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(b * heads * length * d);
      for (let hh = 0; hh < b * heads; hh++) dst.set(src.subarray(hh * total * d, hh * total * d + length * d), hh * length * d);
      out[name] = t.type === 'float16' ? new ort.Tensor('float16', dst as Uint16Array, [b, heads, length, d]) : new ort.Tensor('float32', dst as Float32Array, [b, heads, length, d]);
    }
  }
  return out;
}

/** Names an image's content: a file's path with its size and modification time, or the bytes' hash. */
async function imageKeyOf(image: string | Uint8Array): Promise<string> {
  if (typeof image !== 'string') return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  const path = resolve(image);
  const s = await stat(path).catch(() => undefined); // a missing file is reported by preprocessing
  return s ? `path:${path}:${s.size}:${s.mtimeMs}` : `path:${path}`;
}

/** The default model: the demo that `npm run build` writes to models/demo in the package. */
export function demoModelDir(): string {
  return packagePath('models', 'demo');
}
