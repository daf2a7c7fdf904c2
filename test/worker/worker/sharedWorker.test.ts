/**
 * One worker for two hosts (as two VS Code windows use it): both reach the same process over the
 * socket, the model is loaded once, each side's Stop stops only its own answer, each keeps its own
 * conversation, and after the worker is killed both recover on their next question.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoModelDir } from '../../../src/pipeline/engine/engine';
import { EngineClient, WorkerState } from '../../../src/worker/engineClient';
import { buildFromCheckpoint } from '../../../src/builder/buildModel';
import type { AskResult } from '../../../src/shared/results';
import { scratchDir, tinyCheckpoint } from '../../helpers/checkpoints';

const WORKER = join(__dirname, '..', '..', '..', 'dist', 'worker.js');
const MODEL = { modelDir: demoModelDir(), ep: 'cpu' as const };
const SAMPLE = join(__dirname, '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
const ASK = { ...MODEL, image: SAMPLE, question: 'What does this diagram show?', reduce: { kind: 'prumerge' } as const };

/** Worker processes listening on `socket`, from the process table. */
function workersOn(socket: string): number {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('--listen') && l.includes(socket)).length;
}

/** Waits until `states` ends with `state` (the client notices a closed socket on its own). */
async function until(states: WorkerState[], state: WorkerState): Promise<void> {
  while (states.at(-1) !== state) await new Promise((r) => setTimeout(r, 20));
}

describe('one shared worker for two hosts', { skip: process.platform === 'win32' ? 'Unix sockets only here' : false }, () => {
  const dir = scratchDir('shared');
  const shared = { socketPath: join(dir, 'worker.sock'), logFile: join(dir, 'worker.log') };
  const states: [WorkerState[], WorkerState[]] = [[], []];
  let a: EngineClient;
  let b: EngineClient;
  before(() => {
    assert.ok(existsSync(WORKER), 'dist/worker.js is missing: run `npm run build` (npm test does)');
    a = new EngineClient({ workerPath: WORKER, shared, idleTimeoutMs: 60_000, onStateChange: (s) => states[0].push(s) });
    b = new EngineClient({ workerPath: WORKER, shared, idleTimeoutMs: 60_000, onStateChange: (s) => states[1].push(s) });
  });
  after(async () => {
    await a.stop(true);
    await b.dispose();
    await a.dispose();
  });

  it('serves both from one process that loads the model once, over a socket only the user can open', async () => {
    await a.load(MODEL);
    const alone = (await a.stats())!;
    await b.load(MODEL);
    const both = (await b.stats())!;
    assert.equal(both.pid, alone.pid);
    assert.equal(a.pid, b.pid);
    assert.equal(both.clients, 2);
    assert.equal(workersOn(shared.socketPath), 1);
    // the second window's load reuses the loaded model: no second copy in memory
    assert.ok(both.rssBytes < alone.rssBytes * 1.5, `${alone.rssBytes} -> ${both.rssBytes} bytes`);
    assert.equal(statSync(shared.socketPath).mode & 0o077, 0, 'no access for the group or others');
  });

  it("stops only the answer whose window pressed Stop, and keeps each window's conversation", async () => {
    const stop = new AbortController();
    const [stopped, finished] = await Promise.all([
      a.ask({ ...ASK, maxNewTokens: 64, temperature: 1 }, { onText: () => stop.abort(), signal: stop.signal }),
      b.ask({ ...ASK, maxNewTokens: 6 }),
    ]);
    assert.equal(stopped.stopReason, 'cancelled');
    assert.notEqual(finished.stopReason, 'cancelled');
    assert.ok(finished.tokens.length > 0);
    // b's follow-up continues b's conversation, although a asked in between
    await a.ask({ ...ASK, question: 'Something else?', maxNewTokens: 3 });
    const follow = await b.ask({ ...ASK, question: 'And the green box?', maxNewTokens: 3, followUp: true });
    assert.equal(follow.conversation, 'continued');
    assert.ok(follow.reusedTokens >= finished.promptTokens);
  });

  it('recovers in both windows after the worker is killed, on one new worker', async () => {
    const old = (await a.stats())!.pid;
    process.kill(old, 'SIGKILL');
    await Promise.all([until(states[0], 'stopped'), until(states[1], 'stopped')]);
    const [ra, rb] = await Promise.all([a.ask({ ...ASK, maxNewTokens: 3 }), b.ask({ ...ASK, maxNewTokens: 3 })]);
    assert.ok(ra.tokens.length > 0 && rb.tokens.length > 0);
    assert.notEqual(a.pid, old);
    assert.equal(a.pid, b.pid);
    assert.equal(workersOn(shared.socketPath), 1);
  });

  it('keeps both models of two windows loaded: an answer streams on one while the other asks, and alternating reloads nothing', async () => {
    const ckpt = await tinyCheckpoint({ seed: 43 });
    const other = { modelDir: join(scratchDir('shared'), 'tiny'), ep: 'cpu' as const };
    await buildFromCheckpoint(ckpt.dir, { out: other.modelDir, dtype: 'fp32' });
    await a.load(MODEL);
    const loadsBefore = (await a.stats())!.engineLoads;
    // a samples a long answer on the demo; b asks about another model once a's words are flowing
    let bAnswer: Promise<AskResult> | undefined;
    const long = a.ask(
      { ...ASK, temperature: 1, maxNewTokens: 120 },
      { onText: () => void (bAnswer ??= b.ask({ ...ASK, ...other, maxNewTokens: 8 })) },
    );
    const [ra, rb] = [await long, await bAnswer!];
    assert.ok(ra.stopReason === 'max-tokens' || ra.stopReason === 'eos' || ra.stopReason === 'repetition', ra.stopReason);
    assert.equal(ra.answer.length > 0, true);
    assert.ok(rb.tokens.length > 0);
    const loaded = (await a.stats())!;
    assert.deepEqual([...loaded.modelDirs].sort(), [MODEL.modelDir, other.modelDir].sort());
    // back and forth: no model is opened again
    for (let i = 0; i < 2; i++) {
      await a.ask({ ...ASK, maxNewTokens: 2 });
      await b.ask({ ...ASK, ...other, maxNewTokens: 2 });
    }
    assert.equal((await b.stats())!.engineLoads, loadsBefore + 1, 'only the second model was loaded, once');
  });
});
