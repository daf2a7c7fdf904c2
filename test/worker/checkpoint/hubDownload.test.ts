/** Downloading a checkpoint from a local stand-in for the hub: layout, resume, verification, cancel. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFromCheckpoint } from '../../../src/builder/buildModel';
import { DownloadError, downloadCheckpoint } from '../../../src/checkpoint/hubDownload';
import { scratchDir, tinyCheckpoint } from '../../helpers/checkpoints';
import { FakeHub, startFakeHub } from '../../helpers/fakeHub';

const REPO = 'llava-test/tiny-llava-hf';

describe('model download from a hub', () => {
  let source = '';
  let hub: FakeHub;
  before(async () => {
    source = (await tinyCheckpoint({ seed: 51, shards: 2 })).dir;
    hub = await startFakeHub(REPO, source);
  });
  after(() => hub.close());

  const cdnGets = (): { method: string; path: string; range: string | undefined }[] =>
    hub.log.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/'));

  it('fetches what a build needs into the hub cache layout, and the build works', async () => {
    const cache = scratchDir('hub');
    const seen: number[] = [];
    const snapshot = await downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: cache, onProgress: (p) => seen.push(p.bytes) });
    const root = join(cache, 'models--llava-test--tiny-llava-hf');
    assert.equal(snapshot, join(root, 'snapshots', hub.commit));
    assert.equal(readFileSync(join(root, 'refs', 'main'), 'utf8'), hub.commit);
    const got = readdirSync(snapshot).sort();
    assert.deepEqual(got, readdirSync(source).sort());
    assert.ok(!got.includes('README.md') && !got.includes('pytorch_model.bin'));
    for (const f of got) {
      assert.deepEqual(readFileSync(join(snapshot, f)), readFileSync(join(source, f)), f);
      assert.match(readlinkSync(join(snapshot, f)), /^\.\.\/\.\.\/blobs\//);
    }
    const total = got.reduce((n, f) => n + readFileSync(join(source, f)).length, 0);
    assert.equal(seen.at(-1), total);
    await buildFromCheckpoint(snapshot, { out: join(scratchDir('model'), 'm'), dtype: 'fp32' });

    // a second download reuses the cache: no bytes fetched
    const before = cdnGets().length;
    await downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: cache });
    assert.equal(cdnGets().length, before);
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    const cache = scratchDir('hub');
    hub.cutAfter = 5000;
    await assert.rejects(
      downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: cache }),
      (e: unknown) => e instanceof DownloadError && /broke off at 5000 of \d+ bytes.*resume/.test(e.message),
    );
    const blobs = join(cache, 'models--llava-test--tiny-llava-hf', 'blobs');
    assert.ok(readdirSync(blobs).some((f) => f.endsWith('.incomplete')));
    const snapshot = await downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: cache });
    assert.ok(
      cdnGets().some((r) => r.range === 'bytes=5000-'),
      'resumed from byte 5000',
    );
    assert.ok(!readdirSync(blobs).some((f) => f.endsWith('.incomplete')));
    for (const f of readdirSync(source)) assert.deepEqual(readFileSync(join(snapshot, f)), readFileSync(join(source, f)));
  });

  it('fetches a corrupted file again, and refuses one that stays corrupted', async () => {
    const cache = scratchDir('hub');
    hub.corrupt = 1;
    const snapshot = await downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: cache });
    for (const f of readdirSync(source)) assert.deepEqual(readFileSync(join(snapshot, f)), readFileSync(join(source, f)));

    const bad = scratchDir('hub');
    hub.corrupt = 2;
    await assert.rejects(downloadCheckpoint(REPO, { endpoint: hub.url, cacheDir: bad }), /corrupted twice \(sha256 mismatch\)/);
    hub.corrupt = 0;
    const blobs = join(bad, 'models--llava-test--tiny-llava-hf', 'blobs');
    assert.ok(!readdirSync(blobs).some((f) => /^[0-9a-f]{64}(\.incomplete)?$/.test(f)), 'nothing corrupted is kept');
  });

  it('stops when cancelled and keeps the partial file', async () => {
    const cache = scratchDir('hub');
    const controller = new AbortController();
    hub.cutAfter = undefined;
    await assert.rejects(
      downloadCheckpoint(REPO, {
        endpoint: hub.url,
        cacheDir: cache,
        signal: controller.signal,
        onProgress: (p) => p.file.endsWith('.safetensors') && controller.abort(),
      }),
      /cancelled/,
    );
    assert.ok(existsSync(join(cache, 'models--llava-test--tiny-llava-hf', 'blobs')));
  });

  it('says what is wrong with a bad name, a missing model and an unreachable hub', async () => {
    await assert.rejects(downloadCheckpoint('not a repo', { endpoint: hub.url, cacheDir: scratchDir('hub') }), /not a hub repository name/);
    await assert.rejects(
      downloadCheckpoint('llava-test/missing', { endpoint: hub.url, cacheDir: scratchDir('hub') }),
      /no such model or revision/,
    );
    await assert.rejects(
      downloadCheckpoint(REPO, { endpoint: 'http://127.0.0.1:9', cacheDir: scratchDir('hub') }),
      /cannot reach http:\/\/127\.0\.0\.1:9/,
    );
  });
});
