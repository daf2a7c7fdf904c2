/**
 * The automatic thread count, from sysfs trees written by hand: one thread per physical core,
 * capped by the logical CPUs and a container's quota. Expected counts are worked out from each
 * tree's description, not from the code.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { linuxCpuFacts, parseCpuList, resolveThreads, threadsFor, defaultThreads } from '../../../../src/pipeline/runtime/threads';

/** A sysfs root with `cpus` as [package, core] per logical CPU, `online` as the kernel writes it, and a cgroup cpu.max. */
function sysfs(cpus: readonly [number, number][], online?: string, cpuMax?: string): string {
  const root = mkdtempSync(join(tmpdir(), 'prumerge-sysfs-'));
  const cpuDir = join(root, 'sys', 'devices', 'system', 'cpu');
  cpus.forEach(([pkg, core], i) => {
    const t = join(cpuDir, `cpu${i}`, 'topology');
    mkdirSync(t, { recursive: true });
    writeFileSync(join(t, 'physical_package_id'), `${pkg}\n`);
    writeFileSync(join(t, 'core_id'), `${core}\n`);
  });
  if (online !== undefined) writeFileSync(join(cpuDir, 'online'), `${online}\n`);
  if (cpuMax !== undefined) {
    mkdirSync(join(root, 'sys', 'fs', 'cgroup'), { recursive: true });
    writeFileSync(join(root, 'sys', 'fs', 'cgroup', 'cpu.max'), `${cpuMax}\n`);
  }
  return root;
}

describe('the automatic thread count', () => {
  it('is the core count on a 2-core VM whose sysfs is ordinary (where onnxruntime picked 1)', () => {
    const facts = linuxCpuFacts(
      sysfs(
        [
          [0, 0],
          [0, 1],
        ],
        '0-1',
      ),
      2,
    );
    assert.equal(facts.physical, 2);
    assert.equal(threadsFor(facts), 2);
  });

  it('counts each core once when it has two hardware threads', () => {
    // 4 cores x 2 threads: Linux numbers the siblings 0-3 and 4-7 with the same core ids
    const cpus: [number, number][] = [0, 1, 2, 3, 0, 1, 2, 3].map((c) => [0, c]);
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0-7'), 8)), 4);
  });

  it('tells cores of two packages apart though their core ids repeat', () => {
    const cpus: [number, number][] = [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ];
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0-3'), 4)), 4);
  });

  it('counts only the online CPUs', () => {
    const cpus: [number, number][] = [0, 1, 2, 3].map((c) => [0, c]);
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0,2'), 2)), 2);
  });

  it("never exceeds the logical CPUs this process may use, nor a container's quota", () => {
    const cpus: [number, number][] = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => [0, c]);
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0-7'), 3)), 3, 'affinity of 3 CPUs');
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0-7', '150000 100000'), 8)), 2, '1.5 CPUs of quota round up to 2');
    assert.equal(threadsFor(linuxCpuFacts(sysfs(cpus, '0-7', 'max 100000'), 8)), 8, 'no quota');
  });

  it('falls back to the logical count where sysfs says nothing, and is at least 1', () => {
    const empty = mkdtempSync(join(tmpdir(), 'prumerge-sysfs-'));
    assert.equal(threadsFor(linuxCpuFacts(empty, 6)), 6);
    assert.equal(threadsFor({ logical: 0 }), 1);
  });

  it('reads CPU lists as the kernel writes them', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('5'), [5]);
  });

  it('takes a setting of N as N, and 0 or none as automatic', () => {
    assert.equal(resolveThreads(3), 3);
    assert.equal(resolveThreads(0), defaultThreads());
    assert.equal(resolveThreads(undefined), defaultThreads());
  });
});
