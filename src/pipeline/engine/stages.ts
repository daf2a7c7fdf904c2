/**
 * The stages of a request as the caller sees them: where it may stop (a cancelled request stops at
 * the next stage boundary, prefill chunk or token) and how long each took.
 */
import type { AskStage } from '../../shared/results';
import type { PrefillProgress } from '../../shared/prefillProgress';

export interface AskHooks {
  /** Answer text as it is generated, never splitting a character. */
  readonly onText?: (delta: string) => void;
  readonly onStage?: (stage: AskStage) => void;
  /** After each prefill chunk: how much of the prompt is filled, and how fast. */
  readonly onPrefill?: (progress: PrefillProgress) => void;
  /** Aborting stops the request at the next stage boundary, prefill chunk or token. */
  readonly signal?: AbortSignal;
}

/** Thrown inside the engine at a stage boundary once the request's signal is aborted. */
export class Cancelled extends Error {}

/** A request that was stopped before it had anything to return (an inspection). */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
}

export const now = (): number => performance.now();

/** Where a request may stop: throws once its signal is aborted, else reports the stage beginning. */
export function cancellationPoint(hooks: AskHooks, stage?: AskStage): void {
  if (hooks.signal?.aborted) throw new Cancelled();
  if (stage) hooks.onStage?.(stage);
}

/** One stage: a cancellation point, the stage reported, then `work`, timed. */
export async function timed<T>(hooks: AskHooks, stage: AskStage, work: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  cancellationPoint(hooks, stage);
  const t = now();
  const value = await work();
  return { value, ms: now() - t };
}
