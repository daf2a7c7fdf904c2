/**
 * The inference worker: a child process that owns the onnxruntime sessions and answers the
 * host's JSON-RPC requests (src/protocol.ts) over the IPC channel. One model is kept loaded; a
 * request for another replaces it.
 */
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, ResponseError } from 'vscode-jsonrpc/node';
import { buildFromCheckpoint } from '../builder/buildModel';
import { downloadCheckpoint } from '../builder/hubDownload';
import { UserError } from '../common/errors';
import { Engine } from '../pipeline/engine';
import { renderHeatmap } from '../pipeline/heatmap';
import { ModelSpec, WorkerErrorData, WorkerNotifications, WorkerRequests } from '../protocol';

if (!process.send) {
  process.stderr.write('the PruMerge Vision worker runs as a child process of the extension or the CLI, not on its own\n');
  process.exit(2);
}

const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
let loaded: { key: string; engine: Promise<Engine> } | undefined;
const running = new Map<string, AbortController>();

function engineFor(spec: ModelSpec): Promise<Engine> {
  const key = `${spec.modelDir}\u0000${spec.ep}`;
  if (loaded?.key !== key) {
    const previous = loaded?.engine;
    const engine = Engine.load(spec.modelDir, { ep: spec.ep });
    loaded = { key, engine };
    engine.catch(() => {
      if (loaded?.engine === engine) loaded = undefined; // the next request tries again
    });
    void previous?.then(
      (e) => e.dispose(),
      () => undefined,
    );
  }
  return loaded.engine;
}

/** Errors cross the channel as ResponseErrors carrying the error's kind. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    throw new ResponseError<WorkerErrorData>(1, err.message, { kind: err.name, user: err instanceof UserError });
  }
}

connection.onRequest(WorkerRequests.stats, () => ({
  rssBytes: process.memoryUsage().rss,
  modelDir: loaded ? loaded.key.split('\u0000')[0]! : null,
}));

connection.onRequest(WorkerRequests.load, (spec) =>
  answer(async () => {
    const e = await engineFor(spec);
    const m = e.manifest;
    return {
      name: m.name,
      ep: e.ep,
      epFallbacks: e.epFallbacks,
      randomWeights: m.randomWeights,
      grid: m.vision.grid,
      maxPositions: m.decoder.maxPositions,
    };
  }),
);

connection.onRequest(WorkerRequests.ask, (p) => {
  // registered before any await, so that a cancel arriving while the model loads is not lost
  const controller = new AbortController();
  running.set(p.requestId, controller);
  return answer(async () => {
    try {
      const engine = await engineFor(p);
      return await engine.ask(
        {
          image: p.image,
          question: p.question,
          reduce: p.reduce,
          maxNewTokens: p.maxNewTokens,
          temperature: p.temperature,
          topP: p.topP,
          seed: p.seed,
          followUp: p.followUp,
          history: p.history,
        },
        {
          onText: (delta) => void connection.sendNotification(WorkerNotifications.text, { requestId: p.requestId, delta }),
          onStage: (stage) => void connection.sendNotification(WorkerNotifications.stage, { requestId: p.requestId, stage }),
          onPrefill: (progress) => void connection.sendNotification(WorkerNotifications.prefill, { requestId: p.requestId, progress }),
          signal: controller.signal,
        },
      );
    } finally {
      running.delete(p.requestId);
    }
  });
});

connection.onRequest(WorkerRequests.inspect, (p) => answer(async () => (await engineFor(p)).inspect(p.image, p.reduce)));

connection.onRequest(WorkerRequests.heatmapPng, (p) =>
  answer(async () => {
    const inspection = await (await engineFor(p)).inspect(p.image, p.reduce);
    return (await renderHeatmap(p.image, inspection)).toString('base64');
  }),
);

connection.onRequest(WorkerRequests.download, (p) => {
  const controller = new AbortController();
  running.set(p.requestId, controller);
  return answer(() =>
    downloadCheckpoint(p.repo, {
      endpoint: p.endpoint || undefined,
      token: process.env['HF_TOKEN'],
      signal: controller.signal,
      onProgress: (pr) => void connection.sendNotification(WorkerNotifications.downloadProgress, { requestId: p.requestId, ...pr }),
    }).finally(() => running.delete(p.requestId)),
  );
});

connection.onRequest(WorkerRequests.build, (p) =>
  answer(async () => {
    const m = await buildFromCheckpoint(p.from, {
      out: p.out,
      dtype: p.dtype,
      name: p.name,
      onProgress: (pr) =>
        void connection.sendNotification(WorkerNotifications.buildProgress, {
          buildId: p.buildId,
          stage: pr.stage,
          fraction: pr.bytesRead / Math.max(pr.bytesTotal, 1),
        }),
    });
    return { name: m.name, out: p.out, bytes: Object.values(m.files).reduce((n, f) => n + f.bytes, 0) };
  }),
);

connection.onRequest(WorkerRequests.newConversation, (spec) => answer(async () => (await engineFor(spec)).newConversation()));

connection.onNotification(WorkerNotifications.cancel, ({ requestId }) => running.get(requestId)?.abort());

// the host went away: nothing left to serve
connection.onClose(() => process.exit(0));
process.on('disconnect', () => process.exit(0));
connection.listen();
