/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, speaking the parts of its protocol a download
 * uses: the revision and tree APIs, resolve URLs (LFS files redirect to a CDN path with X-Linked-Etag =
 * sha256 and X-Linked-Size), ETags, and Range requests. It can cut a transfer off once, or
 * corrupt a file's bytes, to test resume and verification.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';

export interface FakeHub {
  readonly url: string;
  readonly commit: string;
  /** Every request: method, path and Range header. */
  readonly log: { method: string; path: string; range: string | undefined }[];
  /** Cut the next CDN transfer of this many bytes or more off after `cutAfter` bytes. */
  cutAfter: number | undefined;
  /** Corrupt this many future CDN transfers. */
  corrupt: number;
  close(): Promise<void>;
}

export async function startFakeHub(repo: string, dir: string): Promise<FakeHub> {
  const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const bySha = new Map([...files].filter(([f]) => f.endsWith('.safetensors')).map(([, b]) => [sha256(b), b]));
  const commit = createHash('sha1').update(repo).digest('hex');
  const hub: FakeHub = {
    url: '',
    commit,
    log: [],
    cutAfter: undefined,
    corrupt: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const send = (res: ServerResponse, req: IncomingMessage, body: Buffer): void => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    let data = body.subarray(start);
    if (hub.corrupt > 0 && req.url!.startsWith('/cdn/')) {
      hub.corrupt--;
      data = Buffer.from(data);
      const i = data.length >> 1;
      data[i] = data[i]! ^ 0xff;
    }
    res.writeHead(range ? 206 : 200, {
      'content-length': data.length,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    const cut = hub.cutAfter;
    if (cut !== undefined && req.url!.startsWith('/cdn/') && data.length > cut) {
      hub.cutAfter = undefined;
      res.write(data.subarray(0, cut), () => res.destroy()); // the connection drops mid-file
      return;
    }
    res.end(data);
  };

  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    hub.log.push({ method: req.method!, path, range: req.headers.range });
    if (path === `/api/models/${repo}/revision/main`) {
      const siblings = [...files.keys(), 'README.md', 'pytorch_model.bin'].map((rfilename) => ({ rfilename }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ id: repo, sha: commit, siblings }));
    }
    if (path === `/api/models/${repo}/tree/${commit}`) {
      const entries = [...files].map(([f, b]) => ({
        type: 'file',
        path: f,
        size: f.endsWith('.safetensors') ? 134 : b.length, // LFS files list their pointer's size
        oid: createHash('sha1').update(b).digest('hex'),
        ...(f.endsWith('.safetensors') ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify([...entries, { type: 'file', path: 'README.md', size: 10, oid: 'a'.repeat(40) }]));
    }
    const resolve = new RegExp(`^/${repo}/resolve/(main|${commit})/(.+)$`).exec(path);
    if (resolve) {
      const body = files.get(resolve[2]!);
      if (!body) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
        return void res.end();
      }
      if (resolve[2]!.endsWith('.safetensors')) {
        res.writeHead(302, {
          location: `/cdn/${sha256(body)}`,
          'x-linked-etag': `"${sha256(body)}"`,
          'x-linked-size': String(body.length),
          etag: `"${createHash('sha1').update(body).digest('hex')}"`,
          'x-repo-commit': commit,
        });
        return void res.end();
      }
      res.setHeader('etag', `"${createHash('sha1').update(body).digest('hex')}"`);
      return send(res, req, body);
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn && bySha.has(cdn[1]!)) return send(res, req, bySha.get(cdn[1]!)!);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  (hub as { url: string }).url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return hub;
}
