/**
 * The host's handle on the inference worker: starts it on first use, talks JSON-RPC to it, and
 * turns a crash (killed, out of memory, native fault) into an error for every pending request and
 * a fresh worker for the next one. Stops it after an idle timeout to give its memory back.
 * No vscode import: the extension and the tests both use it.
 */
import { ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  createMessageConnection,
  IPCMessageReader,
  IPCMessageWriter,
  MessageConnection,
  ResponseError,
  SocketMessageReader,
  SocketMessageWriter,
} from 'vscode-jsonrpc/node';
import { dialSharedWorker, lastLines } from './sharedWorker';
import type { AskHooks } from '../pipeline/engine/stages';
import type { AskResult } from '../shared/results';
import {
  AskParams,
  BuildParams,
  BuildResult,
  HeatmapPngParams,
  ImageCheck,
  ImageTokens,
  ImageTokensParams,
  InspectParams,
  PrepareParams,
  InspectResult,
  LoadResult,
  ModelSpec,
  WorkerErrorData,
  WorkerNotifications,
  WorkerRequests,
  WorkerStats,
} from './protocol';

export type WorkerState = 'stopped' | 'starting' | 'idle' | 'busy';

export interface EngineClientOptions {
  /** The worker's entry: dist/worker.js in the extension. */
  readonly workerPath: string;
  /** Node options for the worker (e.g. ['--import', 'tsx'] for sources, '--inspect' to debug). */
  readonly execArgv?: string[];
  /** Stop the worker after this long without a request (default 10 minutes; 0: never). */
  readonly idleTimeoutMs?: number;
  readonly onStateChange?: (state: WorkerState) => void;
  /** Lines the worker writes to stderr (onnxruntime's own warnings among them); a shared worker's go to its log file. */
  readonly onLog?: (line: string) => void;
  /**
   * Share one worker among all the hosts that name this socket (VS Code windows), started by the
   * first that finds none (sharedWorker.ts); without it, each client has its own child process.
   */
  readonly shared?: { readonly socketPath: string; readonly logFile: string };
}

/** The worker process ended while requests were pending. */
export class WorkerCrashedError extends Error {
  override readonly name = 'WorkerCrashedError';
}

/** A request the worker refused or failed, with the worker-side error's kind (e.g. ImageInputError). */
export class WorkerRequestError extends Error {
  override readonly name = 'WorkerRequestError';
  constructor(
    message: string,
    readonly kind: string,
    /** Bad input the user can act on, as the worker judged it (a UserError there). */
    readonly user: boolean,
    /** What a library said, for the log. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

interface Running {
  /** Our own child; a shared worker is not (it may have been started by another window). */
  readonly child?: ChildProcess;
  /** Settles once connected (at once for a child over IPC). */
  readonly ready: Promise<MessageConnection>;
  pid?: number;
  /**
   * The pending requests' reject functions, called when the process dies. (Not a Promise.race
   * against a "died" promise: each race left a reaction on it holding the result, a leak of
   * about 4 KB per request.)
   */
  readonly onDeath: Set<(e: Error) => void>;
  death?: WorkerCrashedError;
}

export class EngineClient {
  private worker: Running | undefined;
  private pending = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly askListeners = new Map<string, AskHooks>();
  private readonly progressListeners = new Map<string, (stage: string, fraction: number) => void>();
  private readonly prepareListeners = new Map<string, (done: number, total: number) => void>();
  private readonly downloadListeners = new Map<
    string,
    (p: { file: string; bytes: number; total: number; bytesPerSecond: number }) => void
  >();
  private disposed = false;

  constructor(private readonly options: EngineClientOptions) {}

  /** The worker's process id, when one runs. */
  get pid(): number | undefined {
    return this.worker?.pid;
  }

  load(spec: ModelSpec): Promise<LoadResult> {
    return this.request((c) => c.sendRequest(WorkerRequests.load, spec));
  }

  /** An aborted `signal` drops the inspection (waiting or running): it rejects with the worker's CancelledError. */
  inspect(params: Omit<InspectParams, 'requestId'>, signal?: AbortSignal): Promise<InspectResult> {
    const requestId = randomUUID();
    return this.request((c) => cancellable(c, requestId, signal, c.sendRequest(WorkerRequests.inspect, { ...params, requestId })));
  }

  /** Reads an image's crops into the worker's vision cache; an aborted `signal` drops the crops not yet read. */
  prepare(
    params: Omit<PrepareParams, 'requestId'>,
    onProgress: (done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<{ crops: number; cached: number }> {
    const requestId = randomUUID();
    this.prepareListeners.set(requestId, onProgress);
    return this.request((c) => cancellable(c, requestId, signal, c.sendRequest(WorkerRequests.prepare, { ...params, requestId }))).finally(
      () => this.prepareListeners.delete(requestId),
    );
  }

  /** Visual tokens an image makes without reduction, for the model in `params` (no vision run). */
  checkImage(image: string): Promise<ImageCheck> {
    return this.request((c) => c.sendRequest(WorkerRequests.checkImage, { image }));
  }

  imageTokens(params: ImageTokensParams): Promise<ImageTokens> {
    return this.request((c) => c.sendRequest(WorkerRequests.imageTokens, params));
  }

  /** Downloads a checkpoint in the worker; an aborted `signal` stops it (the partial file is kept). */
  download(
    repo: string,
    endpoint: string,
    onProgress: (p: { file: string; bytes: number; total: number; bytesPerSecond: number }) => void,
    signal?: AbortSignal,
  ): Promise<string> {
    const requestId = randomUUID();
    this.downloadListeners.set(requestId, onProgress);
    return this.request((c) =>
      cancellable(c, requestId, signal, c.sendRequest(WorkerRequests.download, { repo, endpoint, requestId })),
    ).finally(() => this.downloadListeners.delete(requestId));
  }

  /** The heatmap PNG of an image, base64. */
  heatmapPng(params: HeatmapPngParams): Promise<string> {
    return this.request((c) => c.sendRequest(WorkerRequests.heatmapPng, params));
  }

  /** Builds a model folder in the worker, reporting progress in 0..1. */
  build(params: Omit<BuildParams, 'buildId'>, onProgress: (stage: string, fraction: number) => void = () => {}): Promise<BuildResult> {
    const buildId = randomUUID();
    this.progressListeners.set(buildId, onProgress);
    return this.request((c) => c.sendRequest(WorkerRequests.build, { ...params, buildId })).finally(() =>
      this.progressListeners.delete(buildId),
    );
  }

  /** The running worker's memory and model; undefined when none runs (this does not start one). */
  async stats(): Promise<WorkerStats | undefined> {
    const w = this.worker;
    if (!w || w.death) return undefined;
    return w.ready.then((c) => c.sendRequest(WorkerRequests.stats)).catch(() => undefined);
  }

  newConversation(spec: ModelSpec): Promise<void> {
    return this.request((c) => c.sendRequest(WorkerRequests.newConversation, spec));
  }

  /** Streams text and stages to `hooks`; an aborted `hooks.signal` stops the answer at the next stage or token. */
  ask(params: Omit<AskParams, 'requestId'>, hooks: AskHooks = {}): Promise<AskResult> {
    const requestId = randomUUID();
    this.askListeners.set(requestId, hooks);
    return this.request((c) =>
      cancellable(c, requestId, hooks.signal, c.sendRequest(WorkerRequests.ask, { ...params, requestId })),
    ).finally(() => this.askListeners.delete(requestId));
  }

  /**
   * Stops the worker (a shared one: lets go of it, and with `everywhere`, makes it exit for every
   * window); the next request starts or finds one again.
   */
  async stop(everywhere = false): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    const connection = await w.ready.catch(() => undefined);
    if (everywhere && !w.child) await connection?.sendRequest(WorkerRequests.shutdown).catch(() => undefined);
    connection?.dispose();
    if (w.child && w.child.exitCode === null && w.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => w.child!.once('exit', () => resolve()));
      w.child.kill();
      await exited;
    }
    this.setState('stopped');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.idleTimer);
    await this.stop();
  }

  private async request<T>(send: (c: MessageConnection) => Promise<T>): Promise<T> {
    if (this.disposed) throw new Error('the engine client was disposed');
    const w = this.worker ?? this.start();
    clearTimeout(this.idleTimer);
    this.pending++;
    this.setState('busy');
    try {
      return await new Promise<T>((resolve, reject) => {
        if (w.death) return reject(w.death);
        w.onDeath.add(reject);
        w.ready
          .then(send)
          .then(resolve, reject)
          .finally(() => w.onDeath.delete(reject));
      });
    } catch (e) {
      if (e instanceof ResponseError) {
        const data = e.data as WorkerErrorData | undefined;
        throw new WorkerRequestError(e.message, data?.kind ?? 'Error', data?.user ?? false, data?.detail);
      }
      throw e;
    } finally {
      this.pending--;
      if (this.pending === 0 && this.worker === w) {
        this.setState('idle');
        this.armIdleTimer();
      }
    }
  }

  private start(): Running {
    this.setState('starting');
    return this.options.shared ? this.startShared(this.options.shared) : this.startChild();
  }

  private startChild(): Running {
    const child = fork(this.options.workerPath, [], {
      execArgv: this.options.execArgv ?? [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const recent: string[] = []; // the worker's last words, for the crash message
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (!line.trim()) continue;
        this.options.onLog?.(line);
        recent.push(line.trim());
        if (recent.length > 50) recent.shift();
      }
    });
    const connection = this.wire(createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child)));
    const running: Running = { child, ready: Promise.resolve(connection), pid: child.pid, onDeath: new Set() };
    child.once('exit', (code, signal) => {
      const said = [...recent].reverse().find((l) => /\b(Error|error:|FATAL|Aborted)/.test(l));
      const how =
        said && /out of memory|heap limit|bad_alloc|Failed to allocate/i.test(said)
          ? 'ran out of memory: try an int4 model, fewer visual tokens or a shorter conversation'
          : signal
            ? `was killed (${signal})${signal === 'SIGKILL' ? ', perhaps for lack of memory' : ''}`
            : `exited with code ${code}`;
      this.died(running, `the inference process ${how}${said ? ` (${said})` : ''}`);
      setImmediate(() => connection.dispose());
    });
    this.worker = running;
    return running;
  }

  /** Connects to the shared worker (starting it when none answers); its end is this connection's end. */
  private startShared(shared: { socketPath: string; logFile: string }): Running {
    const running: Running = {
      onDeath: new Set(),
      ready: dialSharedWorker({
        ...shared,
        workerPath: this.options.workerPath,
        execArgv: this.options.execArgv,
        idleTimeoutMs: this.idleMs(),
      }).then(async (socket) => {
        const connection = this.wire(createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket)));
        socket.once('close', () => {
          void lastLines(shared.logFile, 1).then((said) => {
            this.died(running, `the shared inference process stopped${said ? ` (its log: ${said})` : ''}`);
            connection.dispose();
          });
        });
        running.pid = (await connection.sendRequest(WorkerRequests.stats)).pid;
        return connection;
      }),
    };
    running.ready.catch((e: unknown) => this.died(running, (e as Error).message));
    this.worker = running;
    return running;
  }

  /** The worker's notifications, routed to the requests they belong to. */
  private wire(connection: MessageConnection): MessageConnection {
    connection.onNotification(WorkerNotifications.text, ({ requestId, delta }) => this.askListeners.get(requestId)?.onText?.(delta));
    connection.onNotification(WorkerNotifications.stage, ({ requestId, stage }) => this.askListeners.get(requestId)?.onStage?.(stage));
    connection.onNotification(WorkerNotifications.prefill, ({ requestId, progress }) =>
      this.askListeners.get(requestId)?.onPrefill?.(progress),
    );
    connection.onNotification(WorkerNotifications.buildProgress, ({ buildId, stage, fraction }) =>
      this.progressListeners.get(buildId)?.(stage, fraction),
    );
    connection.onNotification(WorkerNotifications.downloadProgress, ({ requestId, ...p }) => this.downloadListeners.get(requestId)?.(p));
    connection.onNotification(WorkerNotifications.prepareProgress, ({ requestId, done, total }) =>
      this.prepareListeners.get(requestId)?.(done, total),
    );
    connection.listen();
    return connection;
  }

  /** The worker is gone: pending requests fail with why, and the next request starts or finds another. */
  private died(running: Running, why: string): void {
    if (running.death) return;
    // rejected first, so that pending requests report the crash, not the closed connection
    running.death = new WorkerCrashedError(`${why}; the next request starts a new one`);
    for (const reject of running.onDeath) reject(running.death);
    running.onDeath.clear();
    if (this.worker === running) {
      this.worker = undefined;
      this.setState('stopped');
    }
  }

  private idleMs(): number {
    return this.options.idleTimeoutMs ?? 10 * 60_000;
  }

  private armIdleTimer(): void {
    const ms = this.idleMs();
    if (ms <= 0) return;
    this.idleTimer = setTimeout(() => void this.stop(), ms);
    this.idleTimer.unref();
  }

  private setState(state: WorkerState): void {
    this.options.onStateChange?.(state);
  }
}

/**
 * Forwards an abort of `signal` to the worker as a cancel notification. It is sent after the
 * request, so the worker always knows the id it cancels (IPC keeps the order).
 */
function cancellable<T>(c: MessageConnection, requestId: string, signal: AbortSignal | undefined, sent: Promise<T>): Promise<T> {
  if (!signal) return sent;
  const abort = (): void => void c.sendNotification(WorkerNotifications.cancel, { requestId });
  if (signal.aborted) abort();
  else signal.addEventListener('abort', abort, { once: true });
  return sent.finally(() => signal.removeEventListener('abort', abort));
}
