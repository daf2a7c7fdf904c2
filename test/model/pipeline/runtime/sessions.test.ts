/** Execution providers and request checks on the demo model, in process. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { demoModelDir, Engine } from '../../../../src/pipeline/engine/engine';
import { EngineError } from '../../../../src/pipeline/engine/request';
import { parseReduceMode } from '../../../../src/shared/reduceMode';
import { gpuProviders, openSession, SessionError } from '../../../../src/pipeline/runtime/sessions';
import { scratchDir } from '../../../helpers/checkpoints';

describe('sampling settings at the engine', () => {
  it('are refused before any work with a message that names the setting', async () => {
    const engine = await Engine.load(demoModelDir(), { ep: 'cpu' });
    const image = join(__dirname, '..', '..', '..', '..', 'media', 'samples', 'pipeline-diagram.svg');
    try {
      const ask = (extra: object): Promise<unknown> =>
        engine.ask({ image, question: 'Hi', reduce: parseReduceMode('prumerge'), temperature: 0.8, ...extra });
      await assert.rejects(
        ask({ topP: 0 }),
        (e: unknown) => e instanceof EngineError && /^top-p must be a number above 0 and at most 1, got 0$/.test(e.message),
      );
      await assert.rejects(ask({ topP: Number.NaN }), /top-p must be/);
      await assert.rejects(ask({ temperature: -1 }), /temperature must be/);
      await assert.rejects(ask({ maxNewTokens: 0 }), /token budget must be a whole number/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('execution providers', () => {
  const vision = join(demoModelDir(), 'vision.onnx');

  it('tries only the GPU providers of each platform, WebGPU on Linux only with a Vulkan loader', () => {
    assert.deepEqual(gpuProviders('win32'), ['dml', 'webgpu', 'cuda']);
    assert.deepEqual(gpuProviders('darwin'), ['coreml', 'webgpu']);
    assert.ok(gpuProviders('linux').includes('cuda'));
  });

  it('falls back to the CPU under auto and says which provider runs', async () => {
    const s = await openSession(vision, 'auto');
    assert.ok(['cpu', 'cuda', 'webgpu'].includes(s.ep));
    await s.session.release();
  });

  it("leaves no empty mat-debug-<pid>.log of onnxruntime's telemetry in the temporary folder", () => {
    const tmp = scratchDir('tmpdir');
    const script = `require('./src/pipeline/runtime/sessions').openSession(${JSON.stringify(vision)}, 'cpu').then((s) => s.session.release())`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..', '..', '..'),
      env: { ...process.env, TMPDIR: tmp },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('mat-debug-')),
      [],
    );
  });

  it('names a provider that cannot run and what to use instead', async () => {
    if (process.platform !== 'linux') return;
    await assert.rejects(
      openSession(vision, 'dml'),
      (e: unknown) => e instanceof SessionError && /dml execution provider .* Use "auto" or "cpu"/.test(e.message),
    );
  });
});
