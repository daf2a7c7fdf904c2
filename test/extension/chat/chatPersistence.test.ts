/**
 * Chats that survive a reload: the store on disk (bounded, atomic, a corrupt file set aside,
 * pasted images deleted with their chats) and a restored session whose next question gives the
 * engine the earlier exchanges to read again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ChatAskParams, ChatEngine, ChatSession } from '../../../src/extension/chat/chatSession';
import { CHATS_FILE, ChatStore, imagesOf, MAX_CHATS, SavedChat, withChat } from '../../../src/extension/chat/chatStore';
import type { AskHooks } from '../../../src/pipeline/engine/stages';
import type { AskResult } from '../../../src/shared/results';
import type { ChatAnswer, ChatEvent } from '../../../src/shared/webviewMessages';
import { scratchDir } from '../../helpers/checkpoints';

function answer(id: string, question: string, text: string, extra: Partial<ChatAnswer> = {}): ChatAnswer {
  return { id, group: id, question, reduce: 'prumerge', text, done: true, ...extra };
}

function chat(id: string, answers: ChatAnswer[], images: SavedChat['images'] = [], updated = 1): SavedChat {
  return { id, title: answers[0]?.question ?? 'Chat', updated, images, answers };
}

describe('the chat store', () => {
  it('gives back what it saved, newest first, at most the last 20 chats', async () => {
    const store = new ChatStore(scratchDir('chats'));
    let history = { chats: [] as SavedChat[] };
    for (let i = 0; i < MAX_CHATS + 5; i++)
      history = { chats: withChat(history, chat(`c${i}`, [answer(`a${i}`, `Q${i}`, `A${i}`)])).chats.slice() };
    await store.save(history);
    const loaded = await store.load();
    assert.equal(loaded.warning, undefined);
    assert.equal(loaded.chats.length, MAX_CHATS);
    assert.equal(loaded.chats[0]!.id, `c${MAX_CHATS + 4}`);
    assert.deepEqual(loaded.chats[0]!.answers, [answer(`a${MAX_CHATS + 4}`, `Q${MAX_CHATS + 4}`, `A${MAX_CHATS + 4}`)]);
    assert.ok(!readdirSync(store.dir).some((f) => f.endsWith('.partial')), 'no partial file left behind');
  });

  it('sets a corrupt file aside with a warning and starts empty', async () => {
    const dir = scratchDir('chats');
    writeFileSync(join(dir, CHATS_FILE), '{"format": "prumerge-vision-chats", "chats": [{"id": 1');
    const loaded = await new ChatStore(dir).load();
    assert.deepEqual(loaded.chats, []);
    assert.match(loaded.warning!, /could not be read .* set aside as chats\.unreadable-.*\.json/);
    const aside = readdirSync(dir).filter((f) => f.startsWith('chats.unreadable-'));
    assert.equal(aside.length, 1);
    assert.ok(!existsSync(join(dir, CHATS_FILE)));
    // a well-formed file of the wrong shape is set aside too
    writeFileSync(join(dir, CHATS_FILE), JSON.stringify({ format: 'prumerge-vision-chats', chats: [{ id: 'x' }] }));
    assert.match((await new ChatStore(dir).load()).warning!, /set aside/);
  });

  it('keeps the images each answer was given, and names what a chat holds by them', async () => {
    const store = new ChatStore(scratchDir('chats'));
    const diagram = { path: '/w/diagram.png', name: 'diagram.png' };
    const shapes = { path: '/w/img/shapes.svg', name: 'img/shapes.svg' };
    const mixed = chat(
      'm',
      [
        answer('a', 'Q1', 'x', { images: [diagram] }),
        answer('b', 'Q2', 'y', { images: [shapes, diagram] }),
        answer('c', 'Q3', 'z', { images: [diagram] }),
      ],
      [
        { path: shapes.path, pasted: false },
        { path: diagram.path, pasted: false },
      ],
    );
    await store.save({ chats: [mixed] });
    const [back] = (await store.load()).chats;
    assert.deepEqual(back!.answers[1]!.images, [shapes, diagram]);
    assert.deepEqual(back!.images, mixed.images);
    assert.deepEqual(imagesOf(back!), ['diagram.png', 'img/shapes.svg']);
    // saved before answers kept their images: the images the chat had attached
    assert.deepEqual(imagesOf(chat('old', [answer('a', 'Q', 'x')], [{ path: '/w/sub/old.png', pasted: false }])), ['old.png']);
    assert.deepEqual(imagesOf(chat('p', [answer('a', 'Q', 'x')], [{ path: '/s/pasted/pasted-1.png', pasted: true }])), ['pasted image']);
  });

  it('reads a chat saved when a question held one image: its image and that of each answer become lists of one', async () => {
    const dir = scratchDir('chats');
    const diagram = { path: '/w/diagram.png', name: 'diagram.png' };
    const v1 = {
      format: 'prumerge-vision-chats',
      version: 1,
      chats: [
        {
          id: 'c',
          title: 'Q1',
          updated: 5,
          image: { path: diagram.path, pasted: false },
          answers: [
            { id: 'a', group: 'a', question: 'Q1', reduce: 'prumerge', text: 'x', done: true, image: diagram },
            { id: 'e', group: 'e', question: '', reduce: '', text: '', error: 'no image', done: true },
          ],
        },
        { id: 'd', title: 'Q', updated: 4, image: null, answers: [] },
      ],
    };
    writeFileSync(join(dir, CHATS_FILE), JSON.stringify(v1));
    const loaded = await new ChatStore(dir).load();
    assert.equal(loaded.warning, undefined);
    assert.deepEqual(loaded.chats[0]!.images, [{ path: diagram.path, pasted: false }]);
    assert.deepEqual(loaded.chats[0]!.answers[0]!.images, [diagram]);
    assert.equal('image' in loaded.chats[0]!.answers[0]!, false);
    assert.equal(loaded.chats[0]!.answers[1]!.images, undefined);
    assert.deepEqual(loaded.chats[1]!.images, []);
  });

  it('marks an answer that was being written when the window went away as interrupted', async () => {
    const store = new ChatStore(scratchDir('chats'));
    await store.save({ chats: [chat('c', [answer('a', 'Q', 'half an ans', { done: false, stage: 'decode' })])] });
    const [restored] = (await store.load()).chats;
    assert.equal(restored!.answers[0]!.done, true);
    assert.match(restored!.answers[0]!.error!, /Interrupted/);
    assert.equal(restored!.answers[0]!.text, 'half an ans');
  });

  it('deletes a pasted image with the last chat that refers to it, and keeps those attached', async () => {
    const store = new ChatStore(scratchDir('chats'));
    mkdirSync(store.pastedDir, { recursive: true });
    const pasted = (name: string): string => {
      const path = join(store.pastedDir, name);
      writeFileSync(path, 'png');
      return path;
    };
    const [a, b, c, d, e] = [pasted('a.png'), pasted('b.png'), pasted('c.png'), pasted('d.png'), pasted('e.png')];
    const at = (...paths: string[]): SavedChat['images'] => paths.map((path) => ({ path, pasted: true }));
    await store.save(
      {
        chats: [chat('1', [answer('x', 'Q', 'A')], at(a)), chat('2', [answer('y', 'Q', 'A')], at(b, d))],
      },
      [c, e],
    );
    assert.deepEqual(readdirSync(store.pastedDir).sort(), ['a.png', 'b.png', 'c.png', 'd.png', 'e.png']);
    await store.save({ chats: [chat('1', [answer('x', 'Q', 'A')], at(a))] }, [e]);
    assert.deepEqual(readdirSync(store.pastedDir).sort(), ['a.png', 'e.png']);
    await store.clear();
    assert.ok(!existsSync(store.pastedDir));
    assert.deepEqual((await store.load()).chats, []);
  });
});

/** An engine that answers "ok" and remembers what it was asked. */
class RecordingEngine implements ChatEngine {
  readonly asked: ChatAskParams[] = [];
  async ask(params: ChatAskParams, hooks: AskHooks): Promise<AskResult> {
    this.asked.push(params);
    hooks.onText?.('ok');
    return {
      answer: 'ok',
      inputIds: [],
      tokens: [1],
      visual: { total: 576, kept: 33, indices: [], visionRuns: 1 },
      timings: { preprocessMs: 0, visionMs: 0, reduceMs: 0, projectorMs: 0, prefillMs: 0, ttftMs: 1, decodeTokensPerSecond: 1 },
      ep: 'cpu',
      stopReason: 'eos',
      reusedTokens: 0,
      promptTokens: 10,
      conversation: params.followUp ? 'continued' : 'new',
      threads: 1,
    };
  }
  async newConversation(): Promise<void> {}
}

describe('a restored chat', () => {
  it('shows its transcript, and its next question re-encodes the image and reads the earlier answers again', async () => {
    const engine = new RecordingEngine();
    const events: ChatEvent[] = [];
    let saves = 0;
    const session = new ChatSession(
      engine,
      (e) => events.push(e),
      () => ({ maxNewTokens: 8, temperature: 0 }),
      () => saves++,
    );
    const image = join(scratchDir('restored'), 'diagram.png');
    writeFileSync(image, 'not read by the recording engine');
    const compared = [answer('n', 'Compare?', 'all', { group: 'g', reduce: 'none' }), answer('p', 'Compare?', 'some', { group: 'g' })];
    session.restore([image], [...compared, answer('a1', 'What is it?', 'A diagram.'), answer('a2', 'And the box?', 'Green.')]);
    assert.equal(events[0]!.type, 'transcript');

    await session.ask('Which arrow?', { reduce: { kind: 'prumerge' }, detail: 'auto' });
    // the compared pair is not part of the conversation the question continues
    assert.deepEqual(engine.asked[0]!.history, [
      { question: 'What is it?', answer: 'A diagram.' },
      { question: 'And the box?', answer: 'Green.' },
    ]);
    assert.equal(engine.asked[0]!.followUp, false);
    const end = events.find((e) => e.type === 'answerEnd') as Extract<ChatEvent, { type: 'answerEnd' }>;
    assert.match(end.note!, /image was encoded again and the 2 earlier exchanges read again/);
    assert.ok(saves >= 2, 'saved when the answer began and ended');

    // from then on the engine holds the conversation: a plain follow-up
    await session.ask('And the other one?', { reduce: { kind: 'prumerge' }, detail: 'auto' });
    assert.equal(engine.asked[1]!.history, undefined);
    assert.equal(engine.asked[1]!.followUp, true);
  });
});
