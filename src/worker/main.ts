/**
 * The inference worker: a process that owns the onnxruntime sessions and answers JSON-RPC
 * requests (src/worker/protocol.ts). Started by the CLI (or a test) as a child over the IPC channel; or,
 * with `--listen PATH`, shared by every VS Code window of the user over a local socket
 * (sharedWorker.ts): each connection has its own conversation and its own Stop, requests queue in
 * arrival order, and the worker exits once no window has held it for `--idle-ms`. Engines are
 * kept per model (enginePool.ts): a request for another model loads it beside the others while
 * memory allows, and never unloads one that a request is running or waiting on.
 */
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, MessageConnection, ResponseError } from 'vscode-jsonrpc/node';
import { listenShared } from './sharedWorker';
import { buildFromCheckpoint } from '../builder/buildModel';
import { downloadCheckpoint } from '../checkpoint/hubDownload';
import { detailOf, UserError } from '../common/errors';
import { freemem } from 'node:os';
import { resolve } from 'node:path';
import { EngineError, samplingProblem } from '../pipeline/engine/request';
import { Engine } from '../pipeline/engine/engine';
import { Inspection } from '../shared/results';
import { trainedOnSeveralImages } from '../format/familyIds';
import { loadManifest } from '../format/modelManifest';
import { resolveThreads } from '../pipeline/runtime/threads';
import { EnginePool } from './enginePool';
import { DEFAULT_VISION_CACHE_BYTES } from '../pipeline/engine/visionCache';
import { renderHeatmap } from '../pipeline/image/heatmap';
import { decodeImage } from '../pipeline/image/preprocess';
import { imageOf, InspectParams, ModelSpec, WorkerErrorData, WorkerNotifications, WorkerRequests, WorkerStats } from './protocol';

/** The engines loaded, per (model folder, provider, threads): windows on different models keep theirs. */
const engines = new EnginePool<ModelSpec, Engine>({
  key: specKey,
  open: (spec) => {
    engineLoads++;
    return Engine.load(spec.modelDir, { ep: spec.ep, threads: spec.threads, visionCacheBytes: cacheBytes(spec) });
  },
  sizeOf: async (spec) => {
    const m = await loadManifest(resolve(spec.modelDir));
    return Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
  },
  freeBytes: () => freemem(),
});
let engineLoads = 0;
/** The model folder of the last request, for the status bar. */
let lastModelDir: string | null = null;

function specKey(spec: ModelSpec): string {
  return `${resolve(spec.modelDir)}\u0000${spec.ep}\u0000${resolveThreads(spec.threads)}`;
}

async function engineFor(spec: ModelSpec): Promise<Engine> {
  lastModelDir = spec.modelDir;
  const engine = await engines.get(spec);
  engine.visionCache.maxBytes = cacheBytes(spec); // the newest setting wins: windows share the worker
  return engine;
}

function cacheBytes(spec: ModelSpec): number {
  return spec.visionCacheMB === undefined ? DEFAULT_VISION_CACHE_BYTES : Math.max(0, spec.visionCacheMB) * 2 ** 20;
}

/** Errors cross the channel as ResponseErrors carrying the error's kind. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const detail = detailOf(err);
    throw new ResponseError<WorkerErrorData>(1, err.message, {
      kind: err.name,
      user: err instanceof UserError,
      ...(detail ? { detail } : {}),
    });
  }
}

/**
 * Answers one host's requests on `connection`. `owner` names its conversation in the engine;
 * its running requests are its own, for Stop and for when it goes away.
 */
function serve(connection: MessageConnection, owner: string, clients: () => number): { cancelAll(): void } {
  const running = new Map<string, AbortController>();
  serveWorker(connection, clients);
  serveEngine(connection, owner, running);
  serveBuilder(connection, running);
  connection.onNotification(WorkerNotifications.cancel, ({ requestId }) => running.get(requestId)?.abort());

  return {
    cancelAll: () => {
      for (const c of running.values()) c.abort();
      void engines.loaded().then((all) => all.forEach((e) => e.newConversation(owner))); // its KV caches go with it
    },
  };
}

/** What the loaded engines hold, summed: the vision cache's crops and lookups, the standalone conversations kept. */
async function heldStats(): Promise<Pick<WorkerStats, 'visionCache' | 'standalone'>> {
  const loaded = await engines.loaded();
  const sum = (f: (e: Engine) => number): number => loaded.reduce((n, e) => n + f(e), 0);
  return {
    visionCache: {
      crops: sum((e) => e.visionCache.size),
      bytes: sum((e) => e.visionCache.bytes),
      hits: sum((e) => e.visionCache.hits),
      misses: sum((e) => e.visionCache.misses),
    },
    standalone: { conversations: sum((e) => e.standaloneKept.conversations), positions: sum((e) => e.standaloneKept.positions) },
  };
}

/** The worker itself: its memory and connections, and a shutdown for Restart. */
function serveWorker(connection: MessageConnection, clients: () => number): void {
  connection.onRequest(WorkerRequests.stats, async () => ({
    rssBytes: process.memoryUsage().rss,
    modelDir: lastModelDir,
    modelDirs: [...new Set(engines.keys().map((k) => k.split('\u0000')[0]!))],
    engineLoads,
    pid: process.pid,
    clients: clients(),
    ...(await heldStats()),
  }));

  connection.onRequest(WorkerRequests.shutdown, () => {
    setImmediate(() => process.exit(0)); // after the answer is on its way
  });
}

/** The model: load, ask (Stop by request id), inspect, the heatmap, the conversation. */
function serveEngine(connection: MessageConnection, owner: string, running: Map<string, AbortController>): void {
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
        threads: e.threads,
        severalImages: trainedOnSeveralImages(m.family),
        score: m.vision.score ?? 'cls',
      };
    }),
  );

  serveAsk(connection, owner, running);

  // an inspection with a request id can be cancelled (a heatmap that changed its mode drops the old run)
  const inspect = async (p: InspectParams): Promise<Inspection> => {
    const controller = new AbortController();
    if (p.requestId) running.set(p.requestId, controller);
    try {
      return await (await engineFor(p)).inspect(p.image, p.reduce, { signal: controller.signal }, p.detail, p.question);
    } finally {
      if (p.requestId) running.delete(p.requestId);
    }
  };

  connection.onRequest(WorkerRequests.inspect, (p) => answer(() => inspect(p)));

  connection.onRequest(WorkerRequests.prepare, (p) => {
    const controller = new AbortController();
    running.set(p.requestId, controller);
    return answer(async () =>
      (await engineFor(p)).prepare(p.image, p.detail, {
        signal: controller.signal,
        onCrop: (done, total) =>
          void connection.sendNotification(WorkerNotifications.prepareProgress, { requestId: p.requestId, done, total }),
      }),
    ).finally(() => running.delete(p.requestId));
  });

  connection.onRequest(WorkerRequests.heatmapPng, (p) =>
    answer(async () => (await renderHeatmap(p.image, p.inspection)).toString('base64')),
  );

  connection.onRequest(WorkerRequests.checkImage, (p) =>
    answer(async () => {
      const { raster, format } = await decodeImage(p.image); // an SVG's raster, not its declared size
      return { width: raster.width, height: raster.height, format };
    }),
  );

  connection.onRequest(WorkerRequests.imageTokens, (p) => answer(async () => (await engineFor(p)).imageTokens(imageOf(p.image), p.detail)));

  connection.onRequest(WorkerRequests.newConversation, () =>
    answer(async () => (await engines.loaded()).forEach((e) => e.newConversation(owner))),
  );
}

/** Questions: each registered for Stop under its request id before anything is awaited. */
function serveAsk(connection: MessageConnection, owner: string, running: Map<string, AbortController>): void {
  connection.onRequest(WorkerRequests.ask, (p) => {
    // registered before any await, so that a cancel arriving while the model loads is not lost
    const controller = new AbortController();
    running.set(p.requestId, controller);
    return answer(async () => {
      try {
        const problem = samplingProblem(p);
        if (problem) throw new EngineError(problem);
        const engine = await engineFor(p);
        // the question's settings pass whole (a standalone one is kept apart from the window's
        // conversation by the engine); the rest names the model and the request
        const { requestId, modelDir, ep, threads, visionCacheMB, image, images, ...settings } = p;
        const pictures = { ...(image !== undefined ? { image: imageOf(image) } : {}), ...(images ? { images: images.map(imageOf) } : {}) };
        return await engine.ask(
          { ...settings, ...pictures, owner },
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
}

/** Downloads and builds, with progress. */
function serveBuilder(connection: MessageConnection, running: Map<string, AbortController>): void {
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
}

const listenAt = process.argv.indexOf('--listen');
if (listenAt >= 0) {
  const idleAt = process.argv.indexOf('--idle-ms');
  listenShared(process.argv[listenAt + 1] ?? '', idleAt >= 0 ? Number(process.argv[idleAt + 1]) : 10 * 60_000, serve);
} else if (process.send) {
  const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
  serve(connection, 'ipc', () => 1);
  // the host went away: nothing left to serve
  connection.onClose(() => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  connection.listen();
} else {
  process.stderr.write('the PruMerge Vision worker runs as a child process of the extension or the CLI, or with --listen PATH\n');
  process.exit(2);
}
