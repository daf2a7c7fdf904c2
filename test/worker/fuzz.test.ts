/**
 * The bounded fuzz run (scripts/fuzz.ts) as part of the suite: 20 seconds of mutated images and
 * safetensors files in a child process, so that a native crash fails this test instead of
 * taking the runner down. `npm run fuzz -- --seconds 600 --seed N` runs longer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(__dirname, '..', '..');

describe('fuzzing the file parsers', () => {
  it("mutated images and safetensors headers: only the modules' own errors, no hang, no crash", () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'fuzz.ts'), '--seconds', '20', '--seed', '7'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    const said = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.signal, null, `the fuzz process was killed by ${r.signal}; the input it was on is named in:\n${said}`);
    assert.equal(r.status, 0, said);
    assert.match(r.stdout, /no findings: no other error, no hang, no crash/);
    const m =
      /(\d+) mutated images \((\d+) refused with ImageInputError\), (\d+) mutated safetensors files \((\d+) refused with CheckpointError\)/.exec(
        r.stdout,
      );
    assert.ok(m, r.stdout);
    const [images, imageErrors, headers, headerErrors] = m.slice(1).map(Number) as [number, number, number, number];
    // it ran for real: thousands of inputs, and the mutations hit the error paths as well as the good ones
    assert.ok(images >= 1000 && headers >= 1000, `${images} images, ${headers} headers`);
    assert.ok(imageErrors > 0 && imageErrors < images && headerErrors > 0 && headerErrors < headers, r.stdout);
  });
});
