/**
 * The engine's life in a long-lived worker: a load that fails part-way releases what it opened,
 * inspections wait their turn behind answers and can be dropped, and disposing waits for the
 * requests already queued.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancelledError } from '../../../../src/pipeline/engine/stages';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { ModelFolderError } from '../../../../src/format/modelManifest';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { scratchDir } from '../../../helpers/checkpoints';

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const linux = process.platform === 'linux';
const count = (dir: string): number => readdirSync(dir).length;

describe('a load that fails part-way', { skip: linux ? false : '/proc only on Linux' }, () => {
  it('releases the sessions and files it opened: threads and open files do not grow over retries', async () => {
    // the demo model with its tokenizer spoilt (same size, so the manifest check passes): the
    // three graphs and the embedding table open, then the tokenizer fails
    const dir = join(scratchDir('broken'), 'demo');
    cpSync(demoModelDir(), dir, { recursive: true });
    const tokenizer = join(dir, 'tokenizer.json');
    writeFileSync(tokenizer, 'x'.repeat(statSync(tokenizer).size));
    const failing = (): Promise<unknown> =>
      assert.rejects(
        Engine.load(dir, { ep: 'cpu', threads: 2 }),
        (e: unknown) => e instanceof ModelFolderError && /tokenizer\.json/.test(e.message),
      );
    await failing(); // the first load starts libuv's and onnxruntime's own lazily made threads
    const threads = count('/proc/self/task');
    const files = count('/proc/self/fd');
    for (let i = 0; i < 4; i++) await failing();
    // each leaked set would add 3 threads (a pool of 1 per session at 2 threads) and the table's file
    assert.equal(count('/proc/self/task'), threads, 'threads');
    assert.equal(count('/proc/self/fd'), files, 'open files');
  });
});

describe('inspections and the queue', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
  });
  after(() => engine.dispose());

  it('waits behind an answer in progress instead of running beside it', async () => {
    const order: string[] = [];
    const answer = engine
      .ask(
        { image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('prumerge'), maxNewTokens: 6 },
        { onStage: (s) => order.push(`ask:${s}`) },
      )
      .then(() => order.push('ask:done'));
    const inspection = engine.inspect(SAMPLE, parseReduceMode('prumerge')).then(() => order.push('inspect:done'));
    await Promise.all([answer, inspection]);
    assert.deepEqual(order.slice(-2), ['ask:done', 'inspect:done']);
  });

  it('skips the projector, which the heatmap does not need', async () => {
    const r = await engine.inspect(SAMPLE, parseReduceMode('prumerge+'));
    assert.equal(r.timings.projectorMs, 0);
    assert.ok(r.kept.length > 0);
  });

  it('drops a superseded inspection: cancelled while waiting, it never runs', async () => {
    const busy = engine.ask({ image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('prumerge'), maxNewTokens: 4 });
    const controller = new AbortController();
    const dropped = engine.inspect(SAMPLE, parseReduceMode('none'), { signal: controller.signal });
    controller.abort();
    const latest = engine.inspect(SAMPLE, parseReduceMode('topk:8'));
    await assert.rejects(dropped, (e: unknown) => e instanceof CancelledError);
    assert.equal((await latest).kept.length, 8);
    await busy;
  });

  it('waits for queued requests before it lets go of the sessions, and refuses new ones', async () => {
    const own = await Engine.load(demoModelDir(), { ep: 'cpu' });
    const queued = [
      own.ask({ image: SAMPLE, question: 'Describe it.', reduce: parseReduceMode('prumerge'), maxNewTokens: 3 }),
      own.inspect(SAMPLE, parseReduceMode('prumerge')),
    ];
    assert.equal(own.pending, 2);
    const disposed = own.dispose();
    await assert.rejects(own.ask({ image: SAMPLE, question: 'Late?', reduce: parseReduceMode('prumerge') }), /unloaded/);
    const [answer, inspection] = await Promise.all(queued);
    assert.ok((answer as { tokens: number[] }).tokens.length > 0);
    assert.ok((inspection as { kept: number[] }).kept.length > 0);
    await disposed;
    assert.equal(own.pending, 0);
  });
});
