/**
 * A disk too small, or one that fills up mid-way, for a download and for a build: a clear error,
 * the partial download kept for resume (and resumed once there is room), never a model folder
 * or a snapshot that looks complete. The disk is a real tmpfs of a few MiB (test/helpers/smallDisk.ts).
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { scratchDir, tinyCheckpoint } from '../../helpers/checkpoints';
import { FakeHub, startFakeHub } from '../../helpers/fakeHub';
import { canMountSmallDisk, onSmallDisk } from '../../helpers/smallDisk';

const REPO = 'llava-test/tiny-disk-full';
const possible = canMountSmallDisk();
// CI must run these; elsewhere a machine without user namespaces skips them, saying why
const skip = !possible && !process.env['CI'] ? 'this machine does not allow a tmpfs in a user namespace (unshare)' : false;

interface Outcome {
  error: { name: string; message: string } | null;
  left: Record<string, number>;
  retry?: { name: string; message: string } | null;
  same?: boolean;
  after?: Record<string, number>;
}

describe('a full disk', { skip }, () => {
  let source = '';
  let hub: FakeHub;
  before(async () => {
    source = (await tinyCheckpoint({ seed: 61, shards: 2 })).dir; // about 17 MiB
    hub = await startFakeHub(REPO, source);
  });
  after(() => hub?.close());
  const args = (): Record<string, unknown> => ({ repo: REPO, endpoint: hub.url, source, dtype: 'fp32' });

  it('a download that cannot fit is refused before a byte is fetched, saying how much it needs', async () => {
    const r = (await onSmallDisk(scratchDir('disk'), 1024, 'download-too-small', args())) as unknown as Outcome;
    assert.equal(r.error?.name, 'DownloadError');
    const needed = readdirSync(source).reduce((n, f) => n + statSync(join(source, f)).size, 0) / 2 ** 20;
    assert.ok(r.error!.message.startsWith(`downloading ${REPO} needs ${needed.toFixed(1)} MiB in `), r.error!.message);
    assert.match(r.error!.message, /and only 1\.0 MiB is free: free some space, or choose another folder$/);
    assert.deepEqual(Object.keys(r.left), []);
  });

  it('a disk that fills up mid-download: a clear error, the part kept, no snapshot; then it resumes and completes', async () => {
    const before = hub.log.length;
    const r = (await onSmallDisk(scratchDir('disk'), 24 * 1024, 'download-fills-up', args())) as unknown as Outcome;
    assert.equal(r.error?.name, 'DownloadError', JSON.stringify(r.error));
    assert.match(
      r.error!.message,
      /the disk filled up while writing model-0000\d-of-00002\.safetensors .*free some space, then try again; the part already fetched is kept and resumes/,
    );
    const partial = Object.entries(r.left).filter(([f]) => f.endsWith('.incomplete'));
    assert.equal(partial.length, 1, JSON.stringify(r.left));
    assert.ok(partial[0]![1] > 0, 'the part fetched is on disk');
    assert.ok(!Object.keys(r.left).some((f) => f.includes('/refs/')), 'no ref: the snapshot is not marked complete');
    assert.equal(r.retry, null, JSON.stringify(r.retry));
    assert.equal(r.same, true, 'the resumed files equal the source, byte for byte');
    assert.ok(
      hub.log.slice(before).some((q) => q.range !== undefined && /^bytes=[1-9]\d*-$/.test(q.range)),
      'the retry resumed with a Range request',
    );
    assert.ok(!Object.keys(r.after!).some((f) => f.endsWith('.incomplete')));
  });

  it('a build that cannot fit is refused before anything is written', async () => {
    const r = (await onSmallDisk(scratchDir('disk'), 4 * 1024, 'build-too-small', args())) as unknown as Outcome;
    assert.equal(r.error?.name, 'BuildError');
    assert.match(r.error!.message, /the fp32 model needs 1\d\.\d MiB in .* and only \d\.\d MiB is free/);
    assert.deepEqual(Object.keys(r.left), []);
  });

  it('a disk that fills up mid-build: a clear error, and no folder left that could pass for a model', async () => {
    // room for the weights the check counts, not for the tokenizer written after them
    const r = (await onSmallDisk(scratchDir('disk'), 16.5 * 1024, 'build-fills-up', args())) as unknown as Outcome;
    assert.equal(r.error?.name, 'BuildError', JSON.stringify(r.error));
    assert.match(r.error!.message, /the disk filled up while writing the model to .*model .*the unfinished folder was removed/);
    assert.deepEqual(Object.keys(r.left), []);
  });
});
