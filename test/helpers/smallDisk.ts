/**
 * Runs a scenario of test/helpers/smallDiskScenarios.ts in a child process that has a small tmpfs
 * mounted at `disk`: a disk that fills up, for real (ENOSPC from the kernel), without touching
 * the machine's own mounts. The child gets its own user and mount namespaces (`unshare`), so no
 * privileges are needed and nothing stays mounted if it dies.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** Whether this machine lets a process mount a tmpfs in namespaces of its own. */
export function canMountSmallDisk(): boolean {
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /tmp'], {
    encoding: 'utf8',
  });
  return r.status === 0;
}

export interface ScenarioResult {
  [key: string]: unknown;
}

export async function onSmallDisk(disk: string, sizeKiB: number, scenario: string, args: Record<string, unknown>): Promise<ScenarioResult> {
  const script = join(ROOT, 'test', 'helpers', 'smallDiskScenarios.ts');
  const child = spawn(
    'unshare',
    [
      '--user',
      '--map-root-user',
      '--mount',
      'sh',
      '-c',
      `mount -t tmpfs -o size=${sizeKiB}k tmpfs "$0" && exec node --import tsx "$1" "$2" "$3"`,
      disk,
      script,
      scenario,
      JSON.stringify(args),
    ],
    { cwd: ROOT, env: { ...process.env, SMALL_DISK: disk }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // async, not spawnSync: the parent serves the stand-in hub the child downloads from
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`the ${scenario} scenario exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as ScenarioResult;
}
