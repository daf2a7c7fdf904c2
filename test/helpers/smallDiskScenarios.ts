/**
 * Scenarios run by smallDisk.ts inside a child with a small tmpfs at SMALL_DISK. Each prints one
 * line of JSON: the errors met and what was left on the disk after each step.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildFromCheckpoint } from '../../src/builder/buildModel';
import { downloadCheckpoint } from '../../src/checkpoint/hubDownload';

const disk = process.env['SMALL_DISK']!;
const [scenario, argJson] = process.argv.slice(2) as [string, string];
const args = JSON.parse(argJson) as { repo: string; endpoint: string; source: string; dtype: 'fp32' | 'int4' };

async function attempt(work: () => Promise<unknown>): Promise<{ name: string; message: string } | null> {
  try {
    await work();
    return null;
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
}

/** Every file under `dir` (links included) with its size. */
function listing(dir: string): Record<string, number> {
  const files: Record<string, number> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[relative(dir, p)] = e.isSymbolicLink() ? -1 : statSync(p).size;
    }
  };
  walk(dir);
  return files;
}

const free = (): number => {
  const s = statfsSync(disk);
  return s.bavail * s.bsize;
};

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

async function main(): Promise<Record<string, unknown>> {
  const cache = join(disk, 'hub');
  const filler = join(disk, 'filler');
  switch (scenario) {
    case 'download-too-small':
      return {
        error: await attempt(() => downloadCheckpoint(args.repo, { endpoint: args.endpoint, cacheDir: cache })),
        left: listing(disk),
      };
    case 'download-fills-up': {
      let filled = false;
      // once the transfer is under way, something else takes all but 256 KiB of the disk
      const onProgress = (): void => {
        if (filled) return;
        filled = true;
        writeFileSync(filler, Buffer.alloc(Math.max(free() - 256 * 1024, 0)));
      };
      const error = await attempt(() => downloadCheckpoint(args.repo, { endpoint: args.endpoint, cacheDir: cache, onProgress }));
      const left = listing(disk);
      rmSync(filler);
      let snapshot = '';
      const retry = await attempt(
        async () => (snapshot = await downloadCheckpoint(args.repo, { endpoint: args.endpoint, cacheDir: cache })),
      );
      const same = snapshot !== '' && readdirSync(args.source).every((f) => sha(join(snapshot, f)) === sha(join(args.source, f)));
      return { error, left, retry, same, after: listing(disk) };
    }
    case 'build-too-small':
    case 'build-fills-up':
      return {
        error: await attempt(() => buildFromCheckpoint(args.source, { out: join(disk, 'model'), dtype: args.dtype })),
        left: listing(disk),
      };
    default:
      throw new Error(`no scenario ${scenario}`);
  }
}

void main().then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
