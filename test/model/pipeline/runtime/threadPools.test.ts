/** The thread setting reaching onnxruntime, counted in the process's own threads. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { defaultThreads } from '../../../../src/pipeline/runtime/threads';
import { Engine, demoModelDir } from '../../../../src/pipeline/engine/engine';

describe('the thread setting', () => {
  // each onnxruntime session keeps an intra-op pool of N - 1 threads beside the caller's: the process's
  // thread count shows what onnxruntime was really given (Linux: /proc/self/task)
  it('reaches onnxruntime: each of the three sessions gets its pool of N - 1 threads', { skip: process.platform !== 'linux' }, async () => {
    const tasks = (): number => readdirSync('/proc/self/task').length;
    const warm = await Engine.load(demoModelDir(), { ep: 'cpu', threads: 1 }); // libuv's own pool starts on the first load
    try {
      for (const threads of [1, 3, undefined]) {
        const before = tasks();
        const engine = await Engine.load(demoModelDir(), { ep: 'cpu', threads });
        const expected = threads ?? defaultThreads();
        assert.equal(engine.threads, expected);
        assert.equal(tasks() - before, 3 * (expected - 1), `threads: ${threads ?? 'automatic'}`);
        await engine.dispose();
      }
    } finally {
      await warm.dispose();
    }
  });
});
