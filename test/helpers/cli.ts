/** Running bin/prumerge.js as users do, and checking what it says. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SeededRandom } from '../../src/common/random';
import { Matrix } from '../reference/prumergeReference';

export const ROOT = resolve(__dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'prumerge.js');
export const tmp = mkdtempSync(join(tmpdir(), 'prumerge-cli-'));

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function prumerge(args: string[], input?: string): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function randomRows(rng: SeededRandom, rows: number, cols: number, scale = 1): Matrix {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(rng.normal() * scale)));
}

export function writeTaps(name: string, taps: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(taps));
  return path;
}

/** A bad-input run: exit 2 and exactly one line on stderr that matches, nothing on stdout. */
export function assertBadInput(r: Run, pattern: RegExp): void {
  assert.equal(r.status, 2, `exit status, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
}
