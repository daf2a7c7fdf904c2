/**
 * One worker for all of a user's VS Code windows: the worker listens on a local socket (a Unix
 * domain socket in a folder only the user can enter, or a named pipe on Windows), and each window
 * connects to it instead of starting its own, so a 7B model is loaded once. Both sides live here:
 * `listenShared` in the worker, `dialSharedWorker` in the host (which starts the worker when no one
 * answers). The worker exits once no window has been connected for its idle time, or when its
 * socket file is removed.
 */
import { ChildProcess, fork } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createConnection, createServer, Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { createMessageConnection, MessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';

type Serve = (connection: MessageConnection, owner: string, clients: () => number) => { cancelAll(): void };

/** What a worker started for sharing tells its starter over IPC, before it cuts that channel. */
interface ListenStatus {
  readonly status: 'listening' | 'taken';
}

/** Worker side: serves every connection on `path` until idle for `idleMs` with none. */
export function listenShared(path: string, idleMs: number, serve: Serve): void {
  if (!path) {
    process.stderr.write('--listen needs a socket path\n');
    process.exit(2);
  }
  let clients = 0;
  let next = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    clearTimeout(idle);
    if (clients === 0 && idleMs > 0) idle = setTimeout(() => process.exit(0), idleMs);
  };
  const server = createServer((socket) => {
    clients++;
    clearTimeout(idle);
    const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
    const served = serve(connection, `window-${++next}`, () => clients);
    let closed = false;
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (closed) return;
      closed = true;
      clients--;
      served.cancelAll(); // a window that went away stops its answers and frees its conversation
      connection.dispose();
      armIdle();
    });
    connection.listen();
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE') {
      process.stderr.write(`the shared worker cannot listen on ${path}: ${e.message}\n`);
      process.exit(1);
    }
    // another worker may own it (two windows started at once), or it is a dead one's file
    void takeOver(path).then(
      (taken) => {
        if (!taken) return server.listen(path);
        tell({ status: 'taken' });
        process.exit(0);
      },
      (err: Error) => {
        process.stderr.write(`the shared worker cannot take over ${path}: ${err.message}\n`);
        process.exit(1);
      },
    );
  });
  server.on('listening', () => {
    process.umask(umask);
    unlockAfterListening?.();
    tell({ status: 'listening' });
    armIdle();
    // its socket file removed (the storage folder deleted): nobody can reach it any more
    if (process.platform !== 'win32') setInterval(() => existsSync(path) || clients > 0 || process.exit(0), 5_000).unref();
  });
  // the socket is created readable and writable by the user only: nobody else can connect
  const umask = process.umask(0o077);
  server.listen(path);
}

/**
 * Whether a live worker already listens on `path`; if not, its dead file is removed, by one worker
 * at a time (an exclusive lock file), so that two workers recovering it at once cannot delete the
 * socket the other has just made.
 */
async function takeOver(path: string): Promise<boolean> {
  const lock = `${path}.lock`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await isAlive(path)) {
      unlockAfterListening?.(); // a lock of ours, from a try that another worker's listen overtook
      return true;
    }
    try {
      closeSync(openSync(lock, 'wx'));
    } catch {
      // someone else is recovering it; a lock older than 10 s was left by a worker that died
      if (Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 10_000) rmSync(lock, { force: true });
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const alive = await isAlive(path);
    if (!alive) await rm(path, { force: true });
    unlockAfterListening = () => rmSync(lock, { force: true });
    if (alive) unlockAfterListening();
    return alive;
  }
  throw new Error(`${path} stayed locked`);
}

/** Whether a worker answers on `path`. */
function isAlive(path: string): Promise<boolean> {
  return dial(path).then(
    (socket) => (socket.destroy(), true),
    () => false,
  );
}

/** Set while this worker holds the lock on a socket path it is taking over. */
let unlockAfterListening: (() => void) | undefined;

function tell(status: ListenStatus): void {
  process.send?.(status);
  process.disconnect?.();
}

/**
 * Where a shared worker for the extension storage `storage` listens: a socket in that folder (the
 * extension's own, made the user's alone), or in a private folder under the temporary directory
 * when that path is too long for a Unix socket (about 100 bytes); a named pipe on Windows. Its log
 * sits in the storage folder.
 */
export function sharedWorkerPaths(storage: string): { socketPath: string; logFile: string } {
  const logFile = join(storage, 'worker.log');
  const id = createHash('sha256').update(storage).digest('hex').slice(0, 16);
  if (process.platform === 'win32') return { socketPath: `\\\\.\\pipe\\prumerge-vision-${id}`, logFile };
  const inStorage = join(storage, 'worker.sock');
  const socketPath =
    Buffer.byteLength(inStorage) <= 100 ? inStorage : join(tmpdir(), `prumerge-vision-${userInfo().uid}-${id}`, 'worker.sock');
  return { socketPath, logFile };
}

export interface SharedWorkerOptions {
  readonly socketPath: string;
  /** The worker's stderr goes here: no window owns its process. */
  readonly logFile: string;
  readonly workerPath: string;
  readonly execArgv?: string[];
  readonly idleTimeoutMs: number;
}

/** Host side: a connection to the running shared worker, started first if none answers. */
export async function dialSharedWorker(o: SharedWorkerOptions): Promise<Socket> {
  try {
    return await dial(o.socketPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e;
  }
  await startSharedWorker(o);
  return dial(o.socketPath);
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Starts a detached worker listening on the socket; resolves once it (or a rival) listens. */
async function startSharedWorker(o: SharedWorkerOptions): Promise<void> {
  mkdirSync(dirname(o.socketPath), { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32') chmodSync(dirname(o.socketPath), 0o700); // the extension's own folder: the user's alone
  mkdirSync(dirname(o.logFile), { recursive: true });
  const log = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = fork(o.workerPath, ['--listen', o.socketPath, '--idle-ms', String(o.idleTimeoutMs)], {
      execArgv: o.execArgv ?? [],
      detached: true, // it outlives the window that started it
      stdio: ['ignore', 'ignore', log, 'ipc'],
    });
  } finally {
    closeSync(log);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code, signal) => {
      void lastLines(o.logFile, 5).then((said) =>
        reject(new Error(`the shared inference process could not start (${signal ?? `exit code ${code}`})${said ? `: ${said}` : ''}`)),
      );
    });
    child.once('error', reject);
  });
  child.removeAllListeners();
  child.unref();
}

/** The last `n` non-empty lines of a log file, joined: the worker's last words. */
export async function lastLines(file: string, n: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-n)
    .join(' | ');
}
