/**
 * The worker process through the host's client: streaming, cancelling, a crash mid-answer
 * surfacing as an error, and a fresh worker answering the next request.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { demoModelDir } from '../../../src/pipeline/engine/engine';
import { EngineClient, WorkerCrashedError, WorkerRequestError, WorkerState } from '../../../src/worker/engineClient';
import { scratchDir, tinyCheckpoint } from '../../helpers/checkpoints';
import { startFakeHub } from '../../helpers/fakeHub';
import { isAlive as alive } from '../../helpers/processes';

const WORKER = join(__dirname, '..', '..', '..', 'dist', 'worker.js');
const SAMPLE = join(__dirname, '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const MODEL = { modelDir: demoModelDir(), ep: 'cpu' as const };
const ASK = { ...MODEL, image: SAMPLE, question: 'What does this diagram show?', reduce: { kind: 'prumerge' } as const, maxNewTokens: 40 };

describe('the inference worker', () => {
  const states: WorkerState[] = [];
  let client: EngineClient;
  before(() => {
    assert.ok(existsSync(WORKER), 'dist/worker.js is missing: run `npm run build` (npm test does)');
    client = new EngineClient({ workerPath: WORKER, onStateChange: (s) => states.push(s) });
  });
  after(() => client.dispose());

  it('starts on first use and streams an answer', async () => {
    assert.equal(client.pid, undefined, 'no worker before the first request');
    assert.equal(await client.stats(), undefined, 'asking for its memory does not start one');
    const loaded = await client.load(MODEL);
    assert.equal(loaded.randomWeights, true);
    assert.equal(loaded.grid, 24);
    let streamed = '';
    const r = await client.ask(ASK, { onText: (d) => (streamed += d) });
    assert.ok(r.tokens.length > 0);
    assert.equal(streamed.trim(), r.answer);
    assert.equal(r.visual.total, 576);
    assert.ok(states.includes('starting') && states.includes('busy') && states.at(-1) === 'idle');
    // what the status bar shows: the worker's memory, and the model it holds
    const stats = (await client.stats())!;
    assert.equal(stats.modelDir, MODEL.modelDir);
    assert.ok(stats.rssBytes > 50 * 2 ** 20, `${stats.rssBytes} bytes`);
  });

  it('returns the heatmap data of an image', async () => {
    const r = await client.inspect({ ...MODEL, image: SAMPLE, reduce: { kind: 'prumerge+' } });
    assert.equal(r.n, 576);
    assert.equal(r.attention.length, 576);
    assert.equal(r.clusters.length, r.kept.length);
    assert.ok(r.spatial.length > 0);
    // Export PNG draws the inspection the panel holds: the tower does not run again
    const before = (await client.stats())!.visionCache;
    const png = Buffer.from(await client.heatmapPng({ image: SAMPLE, inspection: r }), 'base64');
    assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    const after = (await client.stats())!.visionCache;
    assert.deepEqual({ hits: after.hits, misses: after.misses }, { hits: before.hits, misses: before.misses });
  });

  it('stops at the next token when cancelled', async () => {
    const controller = new AbortController();
    // sampled and long, so that generation is still running when the cancel arrives
    const r = await client.ask(
      { ...ASK, temperature: 1, maxNewTokens: 4000 },
      { onText: () => controller.abort(), signal: controller.signal },
    );
    assert.equal(r.stopReason, 'cancelled');
  });

  it('refuses sampling settings that would pick no token, as a user error in one line', async () => {
    // NaN crosses JSON as null; both, and top-p 0, reached sampleToken and gave `undefined` as a token
    for (const bad of [
      { temperature: 0.7, topP: 0 },
      { temperature: 0.7, topP: Number.NaN },
      { temperature: -1 },
      { temperature: Number.NaN },
    ]) {
      await assert.rejects(
        client.ask({ ...ASK, ...bad }),
        (e: unknown) =>
          e instanceof WorkerRequestError && e.user && /^(top-p|temperature) must be/.test(e.message) && !e.message.includes('\n'),
        JSON.stringify(bad),
      );
    }
    const r = await client.ask({ ...ASK, temperature: 0.7, topP: 0.5, maxNewTokens: 4 });
    assert.ok(r.tokens.every((t) => Number.isInteger(t)));
  });

  it("answers a standalone request (VS Code's chat sends its history each time) beside the window's conversation, not instead of it", async () => {
    const first = await client.ask({ ...ASK, maxNewTokens: 3 });
    assert.equal(first.conversation, 'new');
    const apart = await client.ask({
      ...ASK,
      question: 'And the arrows?',
      history: [{ question: ASK.question, answer: first.answer }],
      standalone: true,
      maxNewTokens: 3,
    });
    assert.equal(apart.conversation, 'new');
    // the window's own follow-up still continues its cached conversation
    const follow = await client.ask({ ...ASK, question: 'And the boxes?', followUp: true, maxNewTokens: 3 });
    assert.equal(follow.conversation, 'continued');
    assert.ok(follow.reusedTokens >= first.promptTokens);
    // a question without a picture
    const text = await client.ask({ ...MODEL, question: 'Hello?', reduce: { kind: 'prumerge' }, maxNewTokens: 3, standalone: true });
    assert.equal(text.visual.kept, 0);
  });

  it('counts the visual tokens of an image without running the vision tower', async () => {
    const { total, subImages } = await client.imageTokens({ ...MODEL, image: SAMPLE });
    assert.deepEqual({ total, subImages }, { total: 576, subImages: 1 });
  });

  it("takes an image's bytes as well as its path (VS Code's chat sends bytes; no file is written)", async () => {
    const base64 = readFileSync(SAMPLE).toString('base64');
    const { total } = await client.imageTokens({ ...MODEL, image: { base64 } });
    assert.equal(total, 576);
    const byPath = await client.ask({ ...ASK, maxNewTokens: 5, temperature: 0, standalone: true });
    const byBytes = await client.ask({ ...ASK, image: { base64 }, maxNewTokens: 5, temperature: 0, standalone: true });
    assert.deepEqual(byBytes.tokens, byPath.tokens);
    assert.deepEqual(byBytes.visual.indices, byPath.visual.indices);
  });

  it('reports a bad image as the worker saw it', async () => {
    await assert.rejects(
      client.ask({ ...ASK, image: join(__dirname, '..', 'nope.png') }),
      (e: unknown) => e instanceof WorkerRequestError && e.kind === 'ImageInputError' && /does not exist/.test(e.message),
    );
  });

  it('turns a killed worker into an error, then answers on a fresh one', async () => {
    const pid = client.pid!;
    const pending = client.ask({ ...ASK, temperature: 1, maxNewTokens: 4000 }, { onText: () => process.kill(pid, 'SIGKILL') });
    await assert.rejects(pending, (e: unknown) => e instanceof WorkerCrashedError && /SIGKILL/.test(e.message));
    assert.ok(!alive(pid), 'the killed worker is gone');
    const r = await client.ask(ASK);
    assert.ok(r.tokens.length > 0);
    assert.notEqual(client.pid, pid);
  });

  it('reports a worker that cannot start, with its own words', async () => {
    const broken = join(scratchDir('worker'), 'broken-worker.js');
    writeFileSync(broken, "require('a-module-that-is-not-there');\n");
    const bad = new EngineClient({ workerPath: broken });
    try {
      await assert.rejects(
        bad.load(MODEL),
        (e: unknown) =>
          e instanceof WorkerCrashedError &&
          /exited with code 1 \(Error: Cannot find module 'a-module-that-is-not-there'\)/.test(e.message),
      );
    } finally {
      await bad.dispose();
    }
  });

  it('downloads a checkpoint in the worker with progress, into HF_HUB_CACHE', async () => {
    const source = (await tinyCheckpoint({ seed: 61 })).dir;
    const hub = await startFakeHub('llava-test/worker-tiny', source);
    const cache = scratchDir('hub');
    const saved = process.env['HF_HUB_CACHE'];
    process.env['HF_HUB_CACHE'] = cache; // the worker inherits it when it starts
    const fresh = new EngineClient({ workerPath: WORKER });
    try {
      const seen: number[] = [];
      const snapshot = await fresh.download('llava-test/worker-tiny', hub.url, (p) => seen.push(p.bytes));
      assert.ok(snapshot.startsWith(join(cache, 'models--llava-test--worker-tiny', 'snapshots')));
      assert.ok(existsSync(join(snapshot, 'model.safetensors')));
      assert.ok(seen.length > 0);
    } finally {
      await fresh.dispose();
      await hub.close();
      if (saved === undefined) delete process.env['HF_HUB_CACHE'];
      else process.env['HF_HUB_CACHE'] = saved;
    }
  });

  it('stops the worker after the idle timeout and starts it again when needed', async () => {
    const quick = new EngineClient({ workerPath: WORKER, idleTimeoutMs: 200 });
    try {
      await quick.load(MODEL);
      const pid = quick.pid!;
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(quick.pid, undefined);
      assert.ok(!alive(pid));
      await quick.load(MODEL);
      assert.ok(quick.pid !== undefined);
    } finally {
      await quick.dispose();
    }
  });

  it('turns a worker that runs out of memory into an error that says so, and leaves no process behind', async () => {
    // a 24 MB JavaScript heap: too small to load the demo model's tokenizer
    const small = new EngineClient({ workerPath: WORKER, execArgv: ['--max-old-space-size=24'] });
    const asked = small.ask({ ...ASK, maxNewTokens: 4 });
    const pid = small.pid;
    await assert.rejects(
      asked,
      (e: unknown) =>
        e instanceof WorkerCrashedError && /ran out of memory: try an int4 model/.test(e.message) && /heap out of memory/.test(e.message),
    );
    assert.ok(pid !== undefined && !alive(pid), 'the worker is gone');
    assert.equal(small.pid, undefined);
    await small.dispose();
  });

  it('keeps nothing of an answer once the caller lets go of it (no growth over a long session)', async () => {
    // a full collection on demand, without starting node with --expose-gc
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 5; i++) refs.push(new WeakRef(await client.ask({ ...ASK, maxNewTokens: 2 })));
    await new Promise((r) => setTimeout(r, 10)); // WeakRefs are kept until the job that made them ends
    gc();
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      refs.map((r) => r.deref() === undefined),
      [true, true, true, true, true],
      'every result was collected',
    );
  });
});
