/**
 * What the chat does with a question, without VS Code: one answer at a time, Stop, New chat,
 * Compare, the view closing mid-answer, and an attached image that changes or disappears
 * between questions. The chat view gives it an engine and a way to post events to the webview;
 * the tests give it the real worker.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { AskHooks } from '../../pipeline/engine/stages';
import type { AskResult } from '../../shared/results';
import { formatReading, type Reading } from '../../shared/reduceMode';
import { applyChatEvent } from '../../shared/chatTranscript';
import { cachedCropsText, lowResolutionNote } from '../../shared/imageNotes';
import { messageOf } from '../../common/errors';
import type { AskParams } from '../../worker/protocol';
import type { ChatAnswer, ChatEvent } from '../../shared/webviewMessages';
import type { ChatTurn } from '../../pipeline/text/prompt';

/** A chat's question: its images are always files the user attached, in the question's order. */
export type ChatAskParams = Omit<AskParams, 'requestId' | 'modelDir' | 'ep' | 'image' | 'images'> & { readonly images: readonly string[] };

export interface ChatEngine {
  ask(params: ChatAskParams, hooks: AskHooks): Promise<AskResult>;
  newConversation(): Promise<void>;
}

export interface ChatSettings {
  readonly maxNewTokens: number;
  readonly temperature: number;
}

export const BUSY_MESSAGE = 'Wait for the current answer, or press Stop.';

/** Compare's second answer, when Stop came during the first. */
export const NOT_RUN_NOTE = 'Not run: Stop was pressed before this answer began. Press Compare again to see both.';

/** How the chat names things to the user: the view's own (workspace-relative), or plain ones for the tests. */
export interface ChatWording {
  /** An image as the user knows it. */
  readonly nameOf: (path: string) => string;
  /** A failure's message in the user's terms (the view logs the detail behind it). */
  readonly describeError: (e: unknown) => string;
}

const PLAIN_WORDING: ChatWording = { nameOf: (path) => basename(path), describeError: messageOf };

export class ChatSession {
  /** The attached images' paths, in the question's order. */
  images: readonly string[] = [];
  private running: AbortController | undefined;
  /** Settles when the question being answered has ended (its last event emitted). */
  private runningDone: Promise<void> = Promise.resolve();
  /** The conversation so far, answers being written included: a view shown again gets it whole. */
  private readonly answers: ChatAnswer[] = [];
  /**
   * The engine holds this chat's conversation: the next question is asked as a follow-up, and the
   * engine decides whether it continues (the same image, read the same way) or starts again.
   */
  private inConversation = false;
  /** The images the conversation the engine holds is about (to say why it started over). */
  private conversationImages: readonly string[] = [];
  /** The transcript came from disk: the engine has never seen it, so the next question reads it again. */
  private restored = false;

  constructor(
    private readonly engine: ChatEngine,
    private readonly post: (event: ChatEvent) => void,
    private readonly settings: () => ChatSettings,
    /**
     * Called when the transcript changed: at once for an answer begun, ended or failed, or the chat
     * cleared; with `streaming` for the words written meanwhile, which the caller saves at a bounded rate.
     */
    private readonly onChange: (streaming: boolean) => void = () => {},
    private readonly wording: ChatWording = PLAIN_WORDING,
  ) {}

  /** The conversation as it stands, for saving. */
  get transcript(): readonly ChatAnswer[] {
    return this.answers;
  }

  /** Shows a saved conversation; the next question re-encodes the images and reads the earlier answers again. */
  restore(images: readonly string[], answers: readonly ChatAnswer[]): void {
    this.running?.abort();
    this.images = images;
    this.answers.splice(0, this.answers.length, ...answers.map((a) => ({ ...a })));
    this.inConversation = false;
    this.restored = answers.length > 0;
    this.post({ type: 'transcript', answers: this.answers, busy: this.busy });
  }

  /** A saved chat is on screen, not yet continued: its next question reads the earlier answers again. */
  get isRestored(): boolean {
    return this.restored;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Answers `question` about the attached images; with `compareWith`, once with that reading and once with `reading`, side by side. */
  async ask(question: string, reading: Reading, compareWith?: Reading): Promise<void> {
    if (!question.trim()) return;
    const images = this.images;
    if (images.length === 0) {
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
    let done = (): void => {};
    this.runningDone = new Promise((resolve) => (done = resolve));
    this.emit({ type: 'busy', busy: true });
    try {
      const gone = await firstMissing(images);
      if (gone !== undefined) {
        this.inConversation = false;
        this.fail(`${this.wording.nameOf(gone)} was moved or deleted after it was attached: attach the image again.`);
        return;
      }
      const group = randomUUID();
      // the same reading twice would show one answer twice: it is asked once
      const compare = compareWith !== undefined && formatReading(compareWith) !== formatReading(reading);
      for (const mode of compare ? [compareWith, reading] : [reading]) {
        if (controller.signal.aborted) {
          // Stop stops what runs now: what was still to come says it did not run, rather than vanishing
          this.emit({ type: 'answerNotRun', id: randomUUID(), question, reduce: formatReading(mode), group, note: NOT_RUN_NOTE });
          continue;
        }
        await this.answer(images, question, mode, compare, group, controller.signal);
      }
    } finally {
      this.running = undefined;
      this.emit({ type: 'busy', busy: false });
      done();
    }
  }

  /** Stops the answer being written, and waits until it has ended in this chat's transcript. */
  async settle(): Promise<void> {
    this.running?.abort();
    await this.runningDone;
  }

  /** The view (re)loaded its page: it gets the conversation as it stands. */
  ready(): void {
    // an empty one too: a view created again restores its own saved state, which may be a chat the
    // host has since left (a new chat started while no view was there to be told)
    this.post({ type: 'transcript', answers: this.answers, busy: this.busy });
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

  /** Starts over; an answer being written is stopped and ends first, so that it stays with the chat it belongs to. */
  async newChat(): Promise<void> {
    await this.settle();
    this.inConversation = false;
    this.restored = false;
    await this.engine.newConversation().catch(() => undefined);
    this.emit({ type: 'cleared' });
  }

  private emit(event: ChatEvent): void {
    applyChatEvent(this.answers, event);
    this.post(event);
    if (SAVED_ON.has(event.type)) this.onChange(false);
    else if (event.type === 'answerDelta') this.onChange(true);
  }

  private async answer(
    images: readonly string[],
    question: string,
    reading: Reading,
    compare: boolean,
    group: string,
    signal: AbortSignal,
  ): Promise<void> {
    const reduce = formatReading(reading);
    const asFollowUp = !compare && this.inConversation;
    // CDPruner chooses the patches for a question: a follow-up chooses them again for its own, and
    // the conversation so far is read again as text (the tower's output comes from memory)
    const rechosen = asFollowUp && reading.reduce.kind === 'cdpruner' && sameList(this.conversationImages, images);
    const followUp = asFollowUp && !rechosen;
    const history = (this.restored || rechosen) && !compare ? earlierTurns(this.answers, reduce) : undefined;
    const id = randomUUID();
    const named = images.map((path) => ({ path, name: this.wording.nameOf(path) }));
    this.emit({ type: 'answerStart', id, question, reduce, group, images: named });
    try {
      const { maxNewTokens, temperature } = this.settings();
      const r = await this.engine.ask(
        {
          images,
          question,
          reduce: reading.reduce,
          detail: reading.detail,
          followUp,
          maxNewTokens,
          temperature,
          ...(history ? { history } : {}),
        },
        {
          onText: (delta) => this.emit({ type: 'answerDelta', id, delta }),
          onStage: (stage) => this.emit({ type: 'answerStage', id, stage }),
          onPrefill: (progress) => this.emit({ type: 'answerPrefill', id, progress }),
          signal,
        },
      );
      // stopped before its first word, a question leaves the conversation as it was
      const nothing = r.stopReason === 'cancelled' && r.tokens.length === 0;
      this.inConversation = !compare && (nothing ? asFollowUp : true);
      const before = this.conversationImages;
      if (!nothing) this.conversationImages = images;
      if (history && !nothing) this.restored = false;
      const fromMemory = r.conversation === 'continued' ? undefined : cachedCropsText(r.visual);
      const stats = {
        visualTokens: r.visual.kept,
        totalVisualTokens: r.visual.total,
        ttftMs: r.timings.ttftMs,
        tokensPerSecond: r.timings.decodeTokensPerSecond,
        ep: r.ep,
        stopReason: r.stopReason,
        reduce,
        tokens: r.tokens.length,
        ...(fromMemory ? { visionCache: fromMemory } : {}),
        ...(r.visual.images ? { images: r.visual.images.map((v, i) => ({ name: named[i]!.name, kept: v.kept, total: v.total })) } : {}),
      };
      const said = rechosen
        ? rechosenNote(history?.length ?? 0)
        : history
          ? restoredNote(history.length, images.length)
          : compare
            ? undefined
            : noteFor(r, followUp, sameList(before, images));
      const small = (r.visual.images ?? [r.visual]).map(
        (v, i) => v.picture && lowResolutionNote(named[i]!.name, v.picture, v.picture.modelSide),
      );
      const note = [said, ...small].filter(Boolean).join(' ');
      this.emit({ type: 'answerEnd', id, answer: r.answer, stats, ...(note ? { note } : {}) });
    } catch (e) {
      this.inConversation = false;
      this.emit({ type: 'answerError', id, message: this.wording.describeError(e) });
    }
  }
}

/** Events after which the transcript is saved at once: an answer begun, ended, failed or not run, the chat cleared. */
const SAVED_ON = new Set<ChatEvent['type']>(['answerStart', 'answerEnd', 'answerError', 'answerNotRun', 'cleared']);

/**
 * The exchanges a restored chat's next question continues: the answers at the end of the
 * transcript that finished with text, asked with the same reduction and not compared.
 */
function earlierTurns(answers: readonly ChatAnswer[], reduce: string): ChatTurn[] {
  const groups = new Map<string, number>();
  for (const a of answers) groups.set(a.group, (groups.get(a.group) ?? 0) + 1);
  const turns: ChatTurn[] = [];
  for (let i = answers.length - 1; i >= 0; i--) {
    const a = answers[i]!;
    if (!a.done || a.error || !a.text || a.reduce !== reduce || groups.get(a.group)! > 1) break;
    turns.unshift({ question: a.question, answer: a.text });
  }
  return turns;
}

function rechosenNote(turns: number): string {
  const read = turns > 0 ? `, and the ${turns === 1 ? 'earlier answer was' : `${turns} earlier exchanges were`} read again` : '';
  return `CDPruner chose the image patches again, for this question${read}.`;
}

function restoredNote(turns: number, images: number): string {
  const read = turns > 0 ? ` and the ${turns === 1 ? 'earlier answer' : `${turns} earlier exchanges`} read again` : '';
  const encoded = images === 1 ? 'the image was encoded again' : `the ${images} images were encoded again`;
  return `Restored from the saved chat: ${encoded}${read}, as the model no longer held this conversation.`;
}

/** Why an answer did not continue the conversation the user was having, when that is news. */
function noteFor(r: AskResult, followUp: boolean, sameImages: boolean): string | undefined {
  if (r.conversation === 'restarted' && r.restartedBy === 'reading')
    return 'A different reduction gives the model different image tokens, so this answer starts a new conversation.';
  if (r.conversation === 'restarted' && !sameImages)
    return 'The images attached changed since the last answer, so this answer starts a new conversation about them.';
  if (r.conversation === 'restarted')
    return r.visual.images
      ? 'An image changed since the last answer, so this answer starts a new conversation about them as they are now.'
      : 'The image changed since the last answer, so this answer starts a new conversation about it as it is now.';
  if (followUp && r.conversation === 'new')
    return 'The earlier conversation was no longer in memory (the model was restarted), so this answer starts a new one.';
  return undefined;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The first of `paths` that is no longer a file. */
async function firstMissing(paths: readonly string[]): Promise<string | undefined> {
  const present = await Promise.all(paths.map(async (p) => (await stat(p).catch(() => undefined))?.isFile() === true));
  return paths[present.indexOf(false)];
}
