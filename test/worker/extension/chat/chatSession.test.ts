/**
 * The chat's handling of questions, over the real inference worker and the demo model, with the
 * webview replaced by a list of the events it would be sent: Stop at every stage, questions fired
 * in a burst, the view hidden or closed mid-answer, and the attached image deleted or changed
 * between questions. Expected answers come from uninterrupted runs of the same questions.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { BUSY_MESSAGE, ChatEngine, ChatSession, NOT_RUN_NOTE } from '../../../../src/extension/chat/chatSession';
import { AskStage } from '../../../../src/shared/results';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import type { Reading } from '../../../../src/shared/reduceMode';
import type { ChatEvent } from '../../../../src/shared/webviewMessages';
import { EngineClient, WorkerState } from '../../../../src/worker/engineClient';
import { scratchDir } from '../../../helpers/checkpoints';

const WORKER = join(__dirname, '..', '..', '..', '..', 'dist', 'worker.js');
const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const MODEL = { modelDir: demoModelDir(), ep: 'cpu' as const };
const STAGES: AskStage[] = ['preprocess', 'vision', 'reduce', 'projector', 'prefill', 'decode'];
const QUESTION = 'What does this diagram show?';
const PRUMERGE: Reading = { reduce: { kind: 'prumerge' }, detail: 'auto' };
const PRUMERGE_PLUS: Reading = { reduce: { kind: 'prumerge+' }, detail: 'auto' };
const ALL_TOKENS: Reading = { reduce: { kind: 'none' }, detail: 'auto' };

type EndEvent = Extract<ChatEvent, { type: 'answerEnd' }>;

describe('the chat over the worker: Stop, bursts, hidden or closed views, changed images', () => {
  let client: EngineClient;
  let engine: ChatEngine;
  const states: WorkerState[] = [];
  let events: ChatEvent[];
  let session: ChatSession;
  /** Called with each event as the view receives it (tests press Stop from here). */
  let onEvent: (e: ChatEvent, s: ChatSession) => void;
  let full: EndEvent;

  /** A chat over the worker posting to `post`, with diagram.png attached. */
  const chatPostingTo = (post: (e: ChatEvent) => void, image = SAMPLE): ChatSession => {
    // temperature 1 with a fixed seed: a long answer, the same every time
    const s = new ChatSession(engine, post, () => ({ maxNewTokens: 60, temperature: 1 }));
    s.images = [image];
    return s;
  };
  const newSession = (): ChatSession => chatPostingTo((e) => (events.push(e), onEvent(e, session)));

  const ends = (): EndEvent[] => events.filter((e): e is EndEvent => e.type === 'answerEnd');
  const errors = (): string[] => events.flatMap((e) => (e.type === 'answerError' ? [e.message] : []));

  before(async () => {
    assert.ok(existsSync(WORKER), 'dist/worker.js is missing: run `npm run build` (npm test does)');
    client = new EngineClient({ workerPath: WORKER, idleTimeoutMs: 0, onStateChange: (s) => states.push(s) });
    engine = { ask: (p, hooks) => client.ask({ ...p, ...MODEL }, hooks), newConversation: () => client.newConversation(MODEL) };
  });
  after(() => client.dispose());
  beforeEach(async () => {
    events = [];
    onEvent = () => {};
    session = newSession();
    if (!full) {
      await session.ask(QUESTION, PRUMERGE);
      full = ends()[0]!;
      assert.ok(full.answer.length > 0);
      events = [];
      session = newSession();
    }
  });

  it('streams an answer: busy, start, the six stages in order, text, end, not busy', async () => {
    await session.ask(QUESTION, PRUMERGE);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'busy');
    assert.equal(types[1], 'answerStart');
    assert.deepEqual(
      events.flatMap((e) => (e.type === 'answerStage' ? [e.stage] : [])),
      STAGES,
    );
    assert.ok(types.indexOf('answerDelta') > types.lastIndexOf('answerStage'));
    // the prompt's fill is reported from the worker, chunk by chunk, until it is complete
    const progress = events.flatMap((e) => (e.type === 'answerPrefill' ? [e.progress] : []));
    assert.ok(progress.length >= 1);
    assert.equal(progress.at(-1)!.filled, progress.at(-1)!.total);
    const at = (stage: string): number => events.findIndex((e) => e.type === 'answerStage' && e.stage === stage);
    assert.ok(types.indexOf('answerPrefill') > at('prefill') && types.lastIndexOf('answerPrefill') < at('decode'));
    assert.deepEqual(types.slice(-2), ['answerEnd', 'busy']);
    const text = events.flatMap((e) => (e.type === 'answerDelta' ? [e.delta] : [])).join('');
    assert.equal(text.trim(), ends()[0]!.answer);
    assert.equal(ends()[0]!.answer, full.answer);
  });

  const answered = (e: EndEvent | undefined): boolean => e !== undefined && e.answer.length > 0 && e.stats.stopReason !== 'cancelled';

  it('Stop over the worker ends the answer as stopped, short of the full one; the next question is answered', async () => {
    // the worker honours Stop at its next stage boundary, however late the notice reaches it
    onEvent = (e, s) => e.type === 'answerStage' && e.stage === 'prefill' && s.stop();
    await session.ask(QUESTION, PRUMERGE);
    assert.equal(ends().length, 1, JSON.stringify(errors()));
    assert.equal(ends()[0]!.stats.stopReason, 'cancelled');
    assert.ok(ends()[0]!.answer.length < full.answer.length, 'stopped short of the full answer');
    assert.equal(events.at(-1)?.type, 'busy');
    onEvent = () => {};
    events = [];
    await session.ask(QUESTION, PRUMERGE);
    assert.ok(answered(ends()[0]), 'the next question');
  });

  it('a burst of twenty questions: the first is answered in full, the others are told to wait', async () => {
    const asks = Array.from({ length: 20 }, (_, i) => session.ask(i === 0 ? QUESTION : `Question ${i}`, PRUMERGE));
    await Promise.all(asks);
    assert.equal(ends().length, 1);
    assert.equal(ends()[0]!.answer, full.answer);
    assert.deepEqual(errors(), new Array<string>(19).fill(BUSY_MESSAGE));
    events = [];
    await session.ask(QUESTION, PRUMERGE);
    assert.ok(answered(ends()[0]), 'and the chat is free again');
  });

  it('Stop and ask again, ten times in a row as fast as events come: every answer ends, the last is whole', async () => {
    for (let i = 0; i < 10; i++) {
      onEvent = (e, s) => e.type === 'answerDelta' && s.stop();
      await session.ask(QUESTION, PRUMERGE);
    }
    assert.equal(ends().length, 10);
    assert.ok(ends().every((e) => e.stats.stopReason === 'cancelled'));
    onEvent = () => {};
    events = [];
    await session.ask(QUESTION, PRUMERGE);
    assert.ok(answered(ends()[0]));
    assert.equal(states.at(-1), 'idle');
  });

  it('a view hidden mid-answer gets the whole answer when it is shown again', async () => {
    let hidden = false;
    const seen: ChatEvent[] = [];
    const s = chatPostingTo((e) => {
      if (!hidden) seen.push(e);
      if (e.type === 'answerDelta') hidden = true; // the page is gone: posts are lost
    });
    await s.ask(QUESTION, PRUMERGE);
    assert.ok(!seen.some((e) => e.type === 'answerEnd'), 'the end was posted to a hidden view');
    hidden = false;
    s.ready(); // the page is loaded again
    const t = seen.at(-1);
    assert.ok(t?.type === 'transcript', `got ${t?.type}`);
    assert.equal(t.busy, false);
    assert.equal(t.answers.length, 1);
    assert.equal(t.answers[0]!.text, full.answer);
    assert.equal(t.answers[0]!.done, true);
  });

  it('a view closed mid-answer stops it, and the worker goes back to idle', async () => {
    onEvent = (e, s) => e.type === 'answerDelta' && s.viewClosed(); // what the chat view's dispose calls
    const before = states.length;
    await session.ask(QUESTION, PRUMERGE);
    assert.equal(ends()[0]!.stats.stopReason, 'cancelled');
    assert.deepEqual(states.slice(before), ['busy', 'idle']);
  });

  it('New chat during an answer stops it and clears the conversation', async () => {
    let cleared: Promise<void> | undefined;
    onEvent = (e, s) => {
      if (e.type === 'answerDelta' && !cleared) cleared = s.newChat();
    };
    await session.ask(QUESTION, PRUMERGE);
    await cleared;
    assert.ok(events.some((e) => e.type === 'cleared'));
    assert.equal(ends()[0]!.stats.stopReason, 'cancelled');
    // the stopped answer ends before the chat is cleared: it is saved with the chat it belongs to
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('answerEnd') < types.indexOf('cleared'), types.join(' '));
  });

  it('an image deleted after it was attached: a clear message, and the chat is free', async () => {
    const dir = scratchDir('chat-image');
    const shot = join(dir, 'shot.png');
    session.images = [SAMPLE, shot];
    await sharp(SAMPLE).png().toFile(shot);
    rmSync(shot);
    await session.ask(QUESTION, PRUMERGE);
    assert.deepEqual(errors(), ['shot.png was moved or deleted after it was attached: attach the image again.']);
    assert.deepEqual(events.at(-1), { type: 'busy', busy: false });
    assert.equal(session.busy, false);
  });

  it('an image changed between questions: the follow-up is about the new picture, and the chat says so', async () => {
    const dir = scratchDir('chat-image');
    const file = join(dir, 'shot.png');
    const other = join(dir, 'other.png');
    await sharp(SAMPLE).png().toFile(file);
    await sharp({ create: { width: 160, height: 120, channels: 3, background: { r: 250, g: 200, b: 0 } } })
      .png()
      .toFile(other);
    session.images = [file];
    await session.ask(QUESTION, PRUMERGE);
    copyFileSync(other, file);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await session.ask('And now?', PRUMERGE);
    const changed = ends()[1]!;
    assert.match(changed.note ?? '', /image changed since the last answer/);

    const fresh = chatPostingTo((e) => events.push(e), other);
    await fresh.ask('And now?', PRUMERGE);
    assert.equal(changed.answer, ends()[2]!.answer, 'the answer a new chat about the new picture gives');
    assert.equal(ends()[2]!.note, undefined);
  });

  it('switching the reduction mid-chat starts a new conversation, and says why', async () => {
    await session.ask(QUESTION, PRUMERGE);
    await session.ask('And the arrows?', PRUMERGE_PLUS);
    assert.match(ends()[1]!.note ?? '', /different reduction/);
  });
});

describe('Stop at each stage, with the engine in process (the signal reaches it at once, so the outcome is certain)', () => {
  let engine: Engine;
  let chat: ChatEngine;
  let full: string;
  const run = async (onEvent: (e: ChatEvent, s: ChatSession) => void): Promise<ChatEvent[]> => {
    const events: ChatEvent[] = [];
    const s: ChatSession = new ChatSession(
      chat,
      (e) => (events.push(e), onEvent(e, s)),
      () => ({ maxNewTokens: 60, temperature: 1 }),
    );
    s.images = [SAMPLE];
    await s.ask(QUESTION, PRUMERGE);
    return events;
  };
  const endOf = (events: ChatEvent[]): EndEvent => events.find((e): e is EndEvent => e.type === 'answerEnd')!;

  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    chat = { ask: (p, hooks) => engine.ask(p, hooks), newConversation: async () => engine.newConversation() };
    full = endOf(await run(() => {})).answer;
    assert.ok(full.length > 0);
  });
  after(() => engine.dispose());

  for (const stage of STAGES) {
    it(`Stop as ${stage} begins: no word is written, and the same question then gets the full answer`, async () => {
      const stopped = endOf(await run((e, s) => e.type === 'answerStage' && e.stage === stage && s.stop()));
      assert.equal(stopped.stats.stopReason, 'cancelled');
      assert.equal(stopped.answer, '');
      assert.equal(stopped.stats.tokens, 0);
      // stopped before its first word, the question left no trace: the same question starts afresh
      assert.equal(endOf(await run(() => {})).answer, full);
    });
  }
});

describe('the chat with the engine in process: Compare and Stop, the image each answer keeps, what is saved while it streams', () => {
  let engine: Engine;
  let chat: ChatEngine;
  const TOPK: Reading = { reduce: { kind: 'topk', k: 32 }, detail: 'auto' };
  /** A chat about `image` whose events go to `events`; `onEvent` may press Stop; `changes` records what it asks to save. */
  const session = (
    events: ChatEvent[],
    onEvent: (e: ChatEvent, s: ChatSession) => void = () => {},
    changes: boolean[] = [],
    image = SAMPLE,
  ): ChatSession => {
    const s: ChatSession = new ChatSession(
      chat,
      (e) => (events.push(e), onEvent(e, s)),
      () => ({ maxNewTokens: 40, temperature: 1 }),
      (streaming) => changes.push(streaming),
    );
    s.images = [image];
    return s;
  };

  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    chat = { ask: (p, hooks) => engine.ask(p, hooks), newConversation: async () => engine.newConversation() };
  });
  after(() => engine.dispose());

  it('Stop during the first answer of Compare: the second says it did not run, in the same exchange', async () => {
    const events: ChatEvent[] = [];
    await session(events, (e, s) => e.type === 'answerDelta' && s.stop()).ask(QUESTION, TOPK, ALL_TOKENS);
    const starts = events.filter((e) => e.type === 'answerStart');
    const notRun = events.filter((e): e is Extract<ChatEvent, { type: 'answerNotRun' }> => e.type === 'answerNotRun');
    assert.equal(starts.length, 1, 'only the all-tokens answer ran');
    assert.equal(notRun.length, 1);
    assert.equal(notRun[0]!.note, NOT_RUN_NOTE);
    assert.equal(notRun[0]!.reduce, 'topk:32');
    assert.equal(notRun[0]!.group, starts[0]!.type === 'answerStart' ? starts[0]!.group : '', 'shown beside the first');
    assert.deepEqual(events.at(-1), { type: 'busy', busy: false });
  });

  it('Stop during the second answer of Compare stops that one; nothing is left out', async () => {
    const events: ChatEvent[] = [];
    let starts = 0;
    await session(events, (e, s) => {
      if (e.type === 'answerStart') starts++;
      if (e.type === 'answerDelta' && starts === 2) s.stop();
    }).ask(QUESTION, TOPK, ALL_TOKENS);
    const ends = events.filter((e): e is EndEvent => e.type === 'answerEnd');
    assert.equal(ends.length, 2);
    assert.equal(ends[1]!.stats.stopReason, 'cancelled');
    assert.equal(events.filter((e) => e.type === 'answerNotRun').length, 0);
  });

  it('Compare with any reading: that one first, then the chosen, side by side; the same reading twice answers once', async () => {
    const events: ChatEvent[] = [];
    const s = session(events);
    await s.ask(QUESTION, TOPK, PRUMERGE);
    const starts = events.filter((e): e is Extract<ChatEvent, { type: 'answerStart' }> => e.type === 'answerStart');
    assert.deepEqual(
      starts.map((e) => e.reduce),
      ['prumerge', 'topk:32'],
    );
    assert.equal(starts[0]!.group, starts[1]!.group, 'one exchange');
    const ends = events.filter((e): e is EndEvent => e.type === 'answerEnd');
    assert.deepEqual(
      ends.map((e) => [e.stats.reduce, e.stats.totalVisualTokens]),
      [
        ['prumerge', 576],
        ['topk:32', 576],
      ],
    );
    // topk:32 keeps 32 patches and merges the rest into one remainder row
    assert.equal(ends[1]!.stats.visualTokens, 33);
    events.length = 0;
    await s.ask(QUESTION, TOPK, TOPK);
    assert.equal(events.filter((e) => e.type === 'answerStart').length, 1);
  });

  it('every answer keeps the image it was given, and the streamed words are offered for saving as they come', async () => {
    const events: ChatEvent[] = [];
    const changes: boolean[] = [];
    await session(events, undefined, changes).ask(QUESTION, PRUMERGE);
    const start = events.find((e) => e.type === 'answerStart');
    assert.deepEqual(start?.type === 'answerStart' && start.images, [{ path: SAMPLE, name: 'pipeline-diagram.svg' }]);
    const deltas = events.filter((e) => e.type === 'answerDelta').length;
    assert.ok(deltas > 0);
    // at once for the start and the end, and once per streamed piece, which the view saves at a bounded rate
    assert.deepEqual(changes, [false, ...Array<boolean>(deltas).fill(true), false]);
  });

  it('a 4 x 4 pixel image: the answer says it is far below the resolution the model reads', async () => {
    const tiny = join(scratchDir('chat-image'), 'tiny.png');
    await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 30, b: 30 } } })
      .png()
      .toFile(tiny);
    const events: ChatEvent[] = [];
    await session(events, undefined, [], tiny).ask(QUESTION, PRUMERGE);
    const end = events.find((e): e is EndEvent => e.type === 'answerEnd');
    // the demo reads 336 x 336 (CLIP-L/336): 336 / 4 = 84
    assert.match(end?.note ?? '', /^tiny\.png is 4 x 4 pixels, far below the 336 x 336 the model reads: it is enlarged about 84x/);
  });

  it('a CDPruner follow-up chooses the patches again for its own question, the conversation read again', async () => {
    const events: ChatEvent[] = [];
    const s = session(events);
    const cdpruner: Reading = { reduce: { kind: 'cdpruner', k: 16 }, detail: 'auto' };
    await s.ask(QUESTION, cdpruner);
    await s.ask('And the arrows?', cdpruner);
    await s.ask('And the colours?', cdpruner);
    const [first, second, third] = events.filter((e): e is EndEvent => e.type === 'answerEnd');
    assert.equal(first!.note, undefined);
    assert.equal(first!.stats.visualTokens, 16);
    assert.equal(second!.note, 'CDPruner chose the image patches again, for this question, and the earlier answer was read again.');
    assert.equal(third!.note, 'CDPruner chose the image patches again, for this question, and the 2 earlier exchanges were read again.');
    assert.equal(third!.stats.visualTokens, 16);
    // the image's crops come from memory, not from the tower
    assert.match(second!.stats.visionCache ?? '', /from memory/);
  });

  it('several images: the answer keeps them in order with the counts of each; another set starts over and says so', async () => {
    const screenshot = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'editor-screenshot.png');
    const events: ChatEvent[] = [];
    const s = session(events, undefined, [], SAMPLE);
    s.images = [SAMPLE, screenshot];
    await s.ask(QUESTION, PRUMERGE);
    const start = events.find((e) => e.type === 'answerStart');
    assert.deepEqual(start?.type === 'answerStart' && start.images, [
      { path: SAMPLE, name: 'pipeline-diagram.svg' },
      { path: screenshot, name: 'editor-screenshot.png' },
    ]);
    const first = events.find((e): e is EndEvent => e.type === 'answerEnd')!;
    const each = first.stats.images!;
    // the demo's CLIP-L/336 tower: 24 x 24 patches an image
    assert.deepEqual(
      each.map((i) => [i.name, i.total]),
      [
        ['pipeline-diagram.svg', 576],
        ['editor-screenshot.png', 576],
      ],
    );
    assert.equal(first.stats.totalVisualTokens, 1152);
    assert.equal(first.stats.visualTokens, each[0]!.kept + each[1]!.kept);
    assert.ok(each.every((i) => i.kept > 0 && i.kept < i.total));

    events.length = 0;
    s.images = [screenshot];
    await s.ask('And this one?', PRUMERGE);
    const second = events.find((e): e is EndEvent => e.type === 'answerEnd')!;
    assert.match(second.note ?? '', /^The images attached changed since the last answer/);
    assert.equal(second.stats.images, undefined);
    assert.equal(second.stats.totalVisualTokens, 576);
  });
});
