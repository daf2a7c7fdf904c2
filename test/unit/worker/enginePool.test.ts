/**
 * The worker's engines per model: kept while memory allows, unloaded least recently used first and
 * only when idle, a failed load forgotten. Fake engines with hand-set sizes and free memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EnginePool, MEMORY_PER_FOLDER_BYTE } from '../../../src/worker/enginePool';

class FakeEngine {
  pending = 0;
  disposed = false;
  constructor(readonly name: string) {}
  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

const GB = 2 ** 30;

/** A pool over models named by size in GB, on a machine with `free` bytes free minus what is loaded. */
function pool(free: number): { pool: EnginePool<string, FakeEngine>; opened: string[] } {
  const opened: string[] = [];
  const size = (name: string): number => Number(name.split(':')[1]) * GB;
  const loaded = new Set<FakeEngine>();
  const p = new EnginePool<string, FakeEngine>({
    key: (s) => s,
    open: async (s) => {
      if (s.startsWith('broken')) throw new Error('cannot open');
      opened.push(s);
      const e = new FakeEngine(s);
      loaded.add(e);
      return e;
    },
    sizeOf: async (s) => size(s),
    freeBytes: () => free - [...loaded].filter((e) => !e.disposed).reduce((n, e) => n + size(e.name) * MEMORY_PER_FOLDER_BYTE, 0),
  });
  return { pool: p, opened };
}

describe('the engine pool', () => {
  it('keeps two models that fit side by side, and alternating opens neither again', async () => {
    const { pool: p, opened } = pool(16 * GB);
    for (let i = 0; i < 3; i++) {
      await p.get('a:4');
      await p.get('b:4');
    }
    assert.deepEqual(opened, ['a:4', 'b:4']);
    assert.deepEqual(p.keys(), ['a:4', 'b:4']);
  });

  it('unloads the least recently used idle model to make room, and only that', async () => {
    const { pool: p } = pool(12 * GB); // room for two 4 GB models (5 GB each with the margin), not three
    const a = await p.get('a:4');
    const b = await p.get('b:4');
    await p.get('a:4'); // a is now the most recently used
    const c = await p.get('c:4');
    assert.equal(b.disposed, true, 'b went');
    assert.equal(a.disposed, false);
    assert.equal(c.disposed, false);
    assert.deepEqual(p.keys(), ['a:4', 'c:4']);
  });

  it('never unloads a model a request is running or waiting on; it loads beside it instead', async () => {
    const { pool: p, opened } = pool(6 * GB);
    const a = await p.get('a:4');
    a.pending = 1;
    const b = await p.get('b:4');
    assert.equal(a.disposed, false, 'busy: kept although memory is short');
    assert.deepEqual(opened, ['a:4', 'b:4']);
    a.pending = 0;
    await p.get('c:4');
    assert.equal(a.disposed, true, 'idle now: the least recently used goes');
    assert.equal(b.disposed, true, 'and b too, for there is room for one only');
  });

  it('forgets a load that failed, so that the next request tries again', async () => {
    const { pool: p } = pool(16 * GB);
    await assert.rejects(p.get('broken:1'), /cannot open/);
    assert.deepEqual(p.keys(), []);
    await assert.rejects(p.get('broken:1'), /cannot open/);
  });
});
