/** What a caller asks the engine, and how it is checked before any work. */
import { UserError } from '../../common/errors';
import { DETAILS } from '../../shared/reduceMode';
import { MAX_IMAGES } from '../../shared/reductionChoices';
import type { AskSettings, ExecutionProviderSetting } from '../../shared/results';

export interface AskRequest extends AskSettings {
  /** The picture the conversation is about; absent: a question without one (text only). */
  readonly image?: string | Uint8Array;
  /** Several pictures, in the order the question names them (instead of `image`). */
  readonly images?: readonly (string | Uint8Array)[];
  /** Whose conversation this continues: each window sharing the worker has its own (default: one for all). */
  readonly owner?: string;
  /**
   * The request is a whole conversation (VS Code's chat sends the history each time): answered
   * apart from the owner's conversation, from a kept standalone one where its prompt continues it.
   */
  readonly standalone?: boolean;
  /** Generate exactly maxNewTokens, past end-of-sequence and repetition (benchmarks). */
  readonly fixedLength?: boolean;
}

/**
 * How the KV cache is held (src/pipeline/kv/decoderFeeds.ts): `in-place`, fixed buffers each run
 * appends its own positions to (the default on the CPU, for decoders built with `new.*` outputs),
 * or `growing`, the whole cache each run returns (GPUs, where it stays on the device, and older
 * model folders). Both give the same logits to the bit.
 */
export type KvCacheMode = 'in-place' | 'growing';

export interface EngineOptions {
  readonly ep?: ExecutionProviderSetting;
  /** onnxruntime's threads per graph; 0 or absent: one per physical core (runtime/threads.ts). */
  readonly threads?: number;
  readonly kvCache?: KvCacheMode;
  /** The vision tower's outputs kept in memory for images seen again, in bytes (0: none kept). */
  readonly visionCacheBytes?: number;
}

export class EngineError extends UserError {
  override readonly name = 'EngineError';
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

/** Refuses an empty question and sampling settings that would make no token (top-p <= 0, NaN), before any work. */
export function checkRequest(r: AskRequest): string {
  const question = r.question.trim();
  if (!question) throw new EngineError('the question is empty: type what you want to know about the image');
  const problem = samplingProblem(r);
  if (problem) throw new EngineError(problem);
  if (r.detail !== undefined && !DETAILS.includes(r.detail))
    throw new EngineError(`detail must be auto, medium or low, got ${JSON.stringify(r.detail)}`);
  return question;
}

/** The request's images in order; refuses `image` and `images` together and more than MAX_IMAGES. */
export function imagesOf(r: Pick<AskRequest, 'image' | 'images'>, model: string): readonly (string | Uint8Array)[] {
  if (r.image !== undefined && r.images !== undefined) throw new EngineError('give image or images, not both');
  const images = r.images ?? (r.image !== undefined ? [r.image] : []);
  if (images.length > MAX_IMAGES) {
    throw new EngineError(
      `${model} takes at most ${MAX_IMAGES} images in one question; this one has ${images.length}: ask about fewer at a time`,
    );
  }
  return images;
}
