/**
 * What the chat does with a question, without VS Code: one answer at a time, Stop, New chat,
 * Compare, the view closing mid-answer, and an attached image that changes or disappears
 * between questions. The chat view gives it an engine and a way to post events to the webview;
 * the tests give it the real worker.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { AskHooks, AskResult } from '../pipeline/engine';
import { formatReduceMode, type ReduceMode } from '../pipeline/reduceMode';
import { applyChatEvent } from '../chatTranscript';
import { messageOf } from '../common/errors';
import type { AskParams, ChatAnswer, ChatEvent } from '../protocol';

export type ChatAskParams = Omit<AskParams, 'requestId' | 'modelDir' | 'ep'>;

export interface ChatEngine {
  ask(params: ChatAskParams, hooks: AskHooks): Promise<AskResult>;
  newConversation(): Promise<void>;
}

export interface ChatSettings {
  readonly maxNewTokens: number;
  readonly temperature: number;
}

export const BUSY_MESSAGE = 'Wait for the current answer, or press Stop.';

export class ChatSession {
  /** The attached image's path. */
  image: string | undefined;
  private running: AbortController | undefined;
  /** The conversation so far, answers being written included: a view shown again gets it whole. */
  private readonly answers: ChatAnswer[] = [];
  /** What the engine's conversation is about: a question on the same image and reduction continues it. */
  private conversation: { image: string; reduce: string } | undefined;

  constructor(
    private readonly engine: ChatEngine,
    private readonly post: (event: ChatEvent) => void,
    private readonly settings: () => ChatSettings,
  ) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Answers `question` about the attached image; with `compare`, once with all tokens and once reduced. */
  async ask(question: string, reduce: ReduceMode, compare = false): Promise<void> {
    if (!question.trim()) return;
    const image = this.image;
    if (!image) {
      this.fail('Attach an image first: right-click one in the Explorer, or use the image button.');
      return;
    }
    // one answer at a time, by design: the engine has one conversation and the CPU has no room for two
    if (this.running) {
      this.fail(BUSY_MESSAGE);
      return;
    }
    const controller = new AbortController();
    this.running = controller;
    this.emit({ type: 'busy', busy: true });
    try {
      if (!(await isFile(image))) {
        this.conversation = undefined;
        this.fail(`${basename(image)} was moved or deleted after it was attached: attach the image again.`);
        return;
      }
      const group = randomUUID();
      for (const mode of compare && reduce.kind !== 'none' ? [{ kind: 'none' } as const, reduce] : [reduce]) {
        if (controller.signal.aborted) break;
        await this.answer(image, question, mode, compare, group, controller.signal);
      }
    } finally {
      this.running = undefined;
      this.emit({ type: 'busy', busy: false });
    }
  }

  /** The view (re)loaded its page: it gets the conversation as it stands. */
  ready(): void {
    if (this.answers.length > 0) this.post({ type: 'transcript', answers: this.answers, busy: this.busy });
  }

  /** Stops the answer being written (at the next stage or token). */
  stop(): void {
    this.running?.abort();
  }

  /** The view was closed (not just hidden): an answer being written is stopped rather than computed for nobody. */
  viewClosed(): void {
    this.stop();
  }

  /** A failure outside any answer (a request the host could not carry out): kept in the transcript too. */
  fail(message: string): void {
    this.emit({ type: 'answerError', id: '', message });
  }

  async newChat(): Promise<void> {
    this.running?.abort();
    this.conversation = undefined;
    await this.engine.newConversation().catch(() => undefined);
    this.emit({ type: 'cleared' });
  }

  private emit(event: ChatEvent): void {
    applyChatEvent(this.answers, event);
    this.post(event);
  }

  private async answer(
    image: string,
    question: string,
    mode: ReduceMode,
    compare: boolean,
    group: string,
    signal: AbortSignal,
  ): Promise<void> {
    const reduce = formatReduceMode(mode);
    const before = this.conversation;
    const followUp = !compare && before?.image === image && before.reduce === reduce;
    const id = randomUUID();
    this.emit({ type: 'answerStart', id, question, reduce, group });
    try {
      const { maxNewTokens, temperature } = this.settings();
      const r = await this.engine.ask(
        { image, question, reduce: mode, followUp, maxNewTokens, temperature },
        {
          onText: (delta) => this.emit({ type: 'answerDelta', id, delta }),
          onStage: (stage) => this.emit({ type: 'answerStage', id, stage }),
          onPrefill: (progress) => this.emit({ type: 'answerPrefill', id, progress }),
          signal,
        },
      );
      // stopped before its first word, a question leaves the conversation as it was
      const nothing = r.stopReason === 'cancelled' && r.tokens.length === 0;
      this.conversation = compare ? undefined : nothing ? (followUp ? before : undefined) : { image, reduce };
      const stats = {
        visualTokens: r.visual.kept,
        totalVisualTokens: r.visual.total,
        ttftMs: r.timings.ttftMs,
        tokensPerSecond: r.timings.decodeTokensPerSecond,
        ep: r.ep,
        stopReason: r.stopReason,
        reduce,
        tokens: r.tokens.length,
      };
      this.emit({ type: 'answerEnd', id, answer: r.answer, stats, ...(compare ? {} : noteFor(r, followUp, before, { image, reduce })) });
    } catch (e) {
      this.conversation = undefined;
      this.emit({ type: 'answerError', id, message: messageOf(e) });
    }
  }
}

/** Why an answer did not continue the conversation the user was having, when that is news. */
function noteFor(
  r: AskResult,
  followUp: boolean,
  before: { image: string; reduce: string } | undefined,
  now: { image: string; reduce: string },
): { note?: string } {
  if (r.conversation === 'restarted')
    return { note: 'The image changed since the last answer, so this answer starts a new conversation about it as it is now.' };
  if (followUp && r.conversation === 'new')
    return { note: 'The earlier conversation was no longer in memory (the model was restarted), so this answer starts a new one.' };
  if (!followUp && before?.image === now.image && before.reduce !== now.reduce) {
    return { note: 'A different reduction gives the model different image tokens, so this answer starts a new conversation.' };
  }
  return {};
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
