/**
 * One answer's prefill and decoding over a conversation's KV cache. A Generation owns the ids it
 * feeds (the prompt, then each generated token once it is fed) and the answer's timings, so the
 * conversation can always say what its cache holds, however the answer ends.
 */
import * as ort from 'onnxruntime-node';
import { SeededRandom } from '../../common/random';
import type { StopReason, Timings } from '../../shared/results';
import type { DecoderKvCache } from '../kv/decoderFeeds';
import type { ModelManifest } from '../../format/modelManifest';
import type { EmbeddingTable } from '../text/embeddings';
import { RepetitionGuard, sampleToken, TextStreamer } from '../text/generate';
import type { PromptBuilder, PromptIds } from '../text/prompt';
import type { EncodedImage } from './encodeImage';
import type { AskRequest } from './request';
import { AskHooks, Cancelled, cancellationPoint, now } from './stages';

/** Prompt tokens filled per decoder run: small enough that Stop is honoured within one chunk. */
export const PREFILL_CHUNK = 128;

/** What a Generation reads the model through. */
export interface TextModel {
  readonly manifest: ModelManifest;
  readonly decoder: ort.InferenceSession;
  readonly table: EmbeddingTable;
  readonly prompt: PromptBuilder;
}

export interface Decoded {
  readonly text: string;
  readonly tokens: number[];
  readonly stopReason: StopReason;
}

export class Generation {
  /** The ids the cache is filled with: the prompt, then generated ones as they are fed. */
  readonly fed: number[];

  constructor(
    private readonly model: TextModel,
    private readonly cache: DecoderKvCache,
    private readonly promptIds: PromptIds,
    private readonly hooks: AskHooks,
    /** Filled in as the answer goes: prefillMs, ttftMs, decodeTokensPerSecond. */
    private readonly timings: Timings,
    /** When the request began, for the time to the first token. */
    private readonly started: number,
  ) {
    this.fed = [...promptIds.ids];
  }

  /** Fills the prompt after the `reuse` cached positions, a chunk at a time, `images` in their slots; returns the last logits. */
  async prefill(images: readonly EncodedImage[], reuse: number): Promise<Float32Array> {
    const { hooks, promptIds: prompt } = this;
    cancellationPoint(hooks, 'prefill');
    const t = now();
    const h = this.model.manifest.decoder.hiddenSize;
    let logits: Float32Array | undefined;
    for (let from = reuse; from < prompt.ids.length; from += PREFILL_CHUNK) {
      if (from > reuse) cancellationPoint(hooks);
      const fill = prompt.ids.slice(from, from + PREFILL_CHUNK);
      const embeds = new Float32Array(fill.length * h);
      for (let i = 0; i < fill.length; i++) {
        const at = from + i;
        const k = prompt.images.findIndex((s) => at >= s.start && at < s.start + s.rows);
        const slot = k < 0 ? -1 : at - prompt.images[k]!.start;
        if (k >= 0) embeds.set(images[k]!.embeds.subarray(slot * h, (slot + 1) * h), i * h);
        else await this.model.table.lookup([fill[i]!], embeds, i);
      }
      logits = await this.cache.run(this.model.decoder, embeds);
      hooks.onPrefill?.({ filled: from + fill.length, total: prompt.ids.length, reused: reuse, elapsedMs: now() - t });
    }
    this.timings.prefillMs = now() - t;
    return logits!;
  }

  /** Samples up to `maxNew` tokens until end-of-sequence, a loop (random weights only) or Stop, streaming their text. */
  async decode(request: AskRequest, maxNew: number, prefilled: Float32Array): Promise<Decoded> {
    const { hooks, timings, model } = this;
    const m = model.manifest;
    cancellationPoint(hooks, 'decode');
    const rng = new SeededRandom(request.seed ?? 0);
    const sampling = { temperature: request.temperature ?? 0, topP: request.topP ?? 1 };
    // a model of random weights loops at once; a real one may repeat rightly (a table's rule, a row of zeros)
    const guard = m.randomWeights ? new RepetitionGuard() : undefined;
    const streamer = new TextStreamer((ids) => model.prompt.decode(ids));
    const tokens: number[] = [];
    const one = new Float32Array(m.decoder.hiddenSize);
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
        timings.ttftMs = now() - this.started;
        decodeStart = now();
      }
      if (id === m.tokenizer.eosTokenId && !request.fixedLength) {
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
        stopReason = this.fed.length + 1 >= m.decoder.maxPositions ? 'context-full' : 'max-tokens';
        break;
      }
      await model.table.lookup([id], one);
      this.fed.push(id);
      logits = await this.cache.run(model.decoder, one);
    }
    const rest = streamer.end();
    if (rest) hooks.onText?.(rest);
    if (tokens.length > 1) timings.decodeTokensPerSecond = (tokens.length - 1) / ((now() - decodeStart) / 1000);
    if (timings.ttftMs === 0) timings.ttftMs = now() - this.started;
    return { text: model.prompt.decode(tokens).trim(), tokens, stopReason };
  }
}
