/**
 * Downloads a checkpoint from the Hugging Face hub (or any server that speaks its protocol:
 * HF_ENDPOINT) into the hub's own cache layout, so files the user already has are reused and
 * files fetched here serve the hub's other clients too:
 *
 *   <cache>/models--ORG--NAME/blobs/<etag>            the bytes (LFS etag = sha256)
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<f>   links to the blobs
 *   <cache>/models--ORG--NAME/refs/<revision>          the commit
 *
 * The file list, sizes and sha256 come from @huggingface/hub's listFiles. The transfer is ours:
 * the library's downloadFileToCacheDir has no progress, resume or cancel. It resumes from
 * <blob>.incomplete with a Range request, checks LFS files against their sha256 before they are
 * used (a mismatch is fetched once more, then refused), and an AbortSignal stops it with the
 * partial file kept for the next try. It checks for free space first, and a disk that fills up
 * anyway keeps the partial file too: the snapshot links are made only for complete files.
 */
import { UserError } from '../common/errors';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { finished } from 'node:stream/promises';
import { dirname, join, relative } from 'node:path';
import { listFiles } from '@huggingface/hub';
import { isDiskFull, lackOfSpace } from '../common/diskSpace';

export interface DownloadProgress {
  readonly file: string;
  /** Bytes of all files so far (reused ones included) and in all. */
  readonly bytes: number;
  readonly total: number;
  readonly bytesPerSecond: number;
}

export interface HubDownloadOptions {
  /** The hub, as HF_ENDPOINT names it for the hub's own clients (default https://huggingface.co). */
  readonly endpoint?: string;
  readonly revision?: string;
  /** The hub cache (default HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  readonly cacheDir?: string;
  readonly token?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: DownloadProgress) => void;
}

export class DownloadError extends UserError {
  override readonly name = 'DownloadError';
}

/** What a LLaVA build needs; weights in other formats (.bin, .pt) and the rest are skipped. */
export function isNeeded(file: string): boolean {
  return /^(model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json|config\.json|generation_config\.json|preprocessor_config\.json|processor_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json|chat_template\.(json|jinja))$/.test(
    file,
  );
}

export function defaultHubCache(): string {
  const env = process.env;
  if (env['HF_HUB_CACHE']) return env['HF_HUB_CACHE'];
  return join(env['HF_HOME'] ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

interface RemoteFile {
  readonly path: string;
  readonly size: number;
  readonly etag: string;
  /** The sha256 to check, for LFS files. */
  readonly sha256: string | undefined;
  readonly url: string;
}

/** Downloads the files a build needs of `repo` ("org/name"); returns the snapshot folder. */
export async function downloadCheckpoint(repo: string, options: HubDownloadOptions = {}): Promise<string> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new DownloadError(`"${repo}" is not a hub repository name (org/name)`);
  const endpoint = (options.endpoint ?? process.env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const root = join(options.cacheDir ?? defaultHubCache(), `models--${repo.replace('/', '--')}`);

  const { commit, files } = await neededFiles(repo, revision, endpoint, headers, options);
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const started = Date.now();
  const report = (file: string, extra: number): void =>
    options.onProgress?.({
      file,
      bytes: done + extra,
      total,
      bytesPerSecond: (done + extra) / Math.max((Date.now() - started) / 1000, 1e-3),
    });

  // what is not in the cache yet, and how many bytes of it are still to come
  const toFetch = new Set<RemoteFile>();
  let missing = 0;
  for (const f of files) {
    const blob = join(root, 'blobs', f.etag);
    if ((await sizeOf(blob)) === f.size) continue;
    toFetch.add(f);
    missing += f.size - ((await sizeOf(`${blob}.incomplete`)) ?? 0);
  }
  const lack = await lackOfSpace(root, missing, `downloading ${repo}`);
  if (lack) throw new DownloadError(lack);

  const snapshot = join(root, 'snapshots', commit);
  try {
    for (const f of files) {
      const blob = join(root, 'blobs', f.etag);
      if (toFetch.has(f)) await fetchBlob(f, blob, headers, options.signal, (n) => report(f.path, n));
      await linkInto(snapshot, f.path, blob);
      done += f.size;
      report(f.path, 0);
    }
    await mkdir(join(root, 'refs'), { recursive: true });
    await writeFile(join(root, 'refs', revision), commit);
  } catch (e) {
    if (isDiskFull(e))
      throw new DownloadError(
        `the disk filled up while writing to ${root}: free some space, then try again; what was fetched is kept and resumes`,
      );
    throw e;
  }
  return snapshot;
}

/** The commit `revision` names, and the files of it a build needs. */
async function neededFiles(
  repo: string,
  revision: string,
  endpoint: string,
  headers: Record<string, string>,
  options: HubDownloadOptions,
): Promise<{ commit: string; files: RemoteFile[] }> {
  const info = await getJson(`${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`, headers, options.signal);
  const commit = typeof info['sha'] === 'string' ? info['sha'] : undefined;
  const siblings = Array.isArray(info['siblings']) ? (info['siblings'] as { rfilename?: unknown }[]) : [];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new DownloadError(`${endpoint} gave no commit for ${repo}@${revision}`);
  if (!siblings.some((s) => typeof s.rfilename === 'string' && /\.safetensors$/.test(s.rfilename))) {
    throw new DownloadError(`${repo} has no safetensors weights; PruMerge Vision builds from safetensors checkpoints only`);
  }
  const files: RemoteFile[] = [];
  try {
    for await (const entry of listFiles({
      repo,
      revision: commit,
      hubUrl: endpoint,
      recursive: true,
      ...(options.token ? { accessToken: options.token } : {}),
    })) {
      if (entry.type !== 'file' || !isNeeded(entry.path)) continue;
      const etag = entry.lfs?.oid ?? entry.oid;
      if (!etag || !/^[\w-]+$/.test(etag)) throw new DownloadError(`${entry.path}: the hub gave no object id`);
      files.push({
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        etag,
        sha256: entry.lfs?.oid,
        url: `${endpoint}/${repo}/resolve/${commit}/${entry.path}`,
      });
    }
  } catch (e) {
    throw e instanceof DownloadError ? e : new DownloadError(`cannot list the files of ${repo}: ${(e as Error).message}`);
  }
  return { commit, files };
}

async function getJson(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const r = await request(url, { headers, signal });
  if (r.status === 401 || r.status === 403)
    throw new DownloadError(`${url} needs access: accept the model's terms on the hub and set a token`);
  if (r.status === 404) throw new DownloadError(`no such model or revision: ${url}`);
  if (!r.ok) throw new DownloadError(`${url} answered ${r.status} ${r.statusText}`);
  return (await r.json()) as Record<string, unknown>;
}

/** Downloads into <blob>.incomplete (resuming it), checks it, renames it into place. */
async function fetchBlob(
  f: RemoteFile,
  blob: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  progress: (bytes: number) => void,
): Promise<void> {
  await mkdir(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let have = (await sizeOf(partial)) ?? 0;
    if (have > f.size) {
      await rm(partial);
      have = 0;
    }
    const hash = createHash('sha256');
    if (have > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
    if (have < f.size) {
      const r = await request(f.url, { headers: { ...headers, ...(have > 0 ? { range: `bytes=${have}-` } : {}) }, signal });
      if (!r.ok || !r.body) throw new DownloadError(`${f.path}: the download answered ${r.status} ${r.statusText}`);
      if (have > 0 && r.status !== 206) {
        // the server ignored the range: start over
        hash.destroy();
        await rm(partial, { force: true });
        return fetchBlob(f, blob, headers, signal, progress);
      }
      const out = createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' });
      let broke: unknown;
      try {
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          have += chunk.length;
          // once() rejects on the stream's 'error' (a full disk): waiting for 'drain' alone would hang
          if (!out.write(chunk)) await once(out, 'drain');
          progress(have);
        }
      } catch (e) {
        broke = e;
      }
      out.end();
      const writeError: unknown = await finished(out).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (writeError !== undefined || isDiskFull(broke)) throw diskError(writeError ?? broke, f.path, partial);
      if (broke !== undefined) {
        if (signal?.aborted) throw new DownloadError(`cancelled; ${f.path} is kept at ${have} of ${f.size} bytes and resumes next time`);
        throw new DownloadError(
          `${f.path}: the transfer broke off at ${have} of ${f.size} bytes (${(broke as Error).message}); try again to resume`,
        );
      }
    }
    if (have !== f.size) throw new DownloadError(`${f.path}: got ${have} of ${f.size} bytes; try again to resume`);
    if (f.sha256 === undefined || hash.digest('hex') === f.sha256) {
      await rename(partial, blob);
      return;
    }
    await rm(partial, { force: true }); // corrupted: never used, fetched once more
  }
  throw new DownloadError(`${f.path} arrived corrupted twice (sha256 mismatch); it was deleted: try again later`);
}

function diskError(err: unknown, path: string, partial: string): DownloadError {
  if (isDiskFull(err))
    return new DownloadError(
      `the disk filled up while writing ${path} (${dirname(partial)}): free some space, then try again; the part already fetched is kept and resumes`,
    );
  return new DownloadError(`cannot write ${partial}: ${(err as Error).message}`);
}

/** The file's size, or undefined when there is none. */
async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** snapshots/<commit>/<path> -> ../../blobs/<etag>, as the hub's clients lay it out (a copy where links fail). */
async function linkInto(snapshot: string, path: string, blob: string): Promise<void> {
  const target = join(snapshot, path);
  await mkdir(dirname(target), { recursive: true });
  await rm(target, { force: true });
  try {
    await symlink(relative(dirname(target), blob), target);
  } catch {
    await copyFile(blob, target);
  }
}

function request(url: string, init: RequestInit): Promise<Response> {
  return fetch(url, init).catch((e: unknown) => {
    if (init.signal?.aborted) throw new DownloadError('cancelled');
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new DownloadError(
      `cannot reach ${new URL(url).origin}${cause ? ` (${cause})` : ''}: check the network or the hub endpoint setting`,
    );
  });
}
