/**
 * How many threads onnxruntime runs each graph on. Its own default can be one thread on a VM or in
 * a container (docs/onnxruntime-node.md, "Threads"): half the speed of two on a 2-core machine.
 * So the count is always set, from the machine: one per physical core, never more than the
 * logical CPUs this process may use, nor than a container's CPU quota.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** What the machine says about its CPUs; every field may be unknown. */
export interface CpuFacts {
  /** Logical CPUs this process may run on (affinity included). */
  readonly logical: number;
  /** Distinct physical cores among the online CPUs (Linux sysfs; macOS hw.physicalcpu). */
  readonly physical?: number;
  /** A cgroup's CPU quota, in CPUs, rounded up (containers). */
  readonly quota?: number;
}

/** The automatic count: physical cores, capped by the logical CPUs and the quota; at least 1. */
export function threadsFor(facts: CpuFacts): number {
  const caps = [facts.logical, facts.physical, facts.quota].filter((n): n is number => n !== undefined && n > 0);
  return caps.length > 0 ? Math.min(...caps) : 1;
}

/** Reads the facts from a Linux sysfs tree (`root` is `/` on a real machine). */
export function linuxCpuFacts(root: string, logical: number): CpuFacts {
  return { logical, physical: physicalCores(root), quota: cgroupQuota(root) };
}

/** Distinct (package, core) pairs over the online CPUs; undefined where sysfs does not say. */
function physicalCores(root: string): number | undefined {
  const cpuDir = join(root, 'sys', 'devices', 'system', 'cpu');
  const online = readText(join(cpuDir, 'online'));
  const cpus = online !== undefined ? parseCpuList(online) : listCpus(cpuDir);
  const cores = new Set<string>();
  for (const cpu of cpus) {
    const topology = join(cpuDir, `cpu${cpu}`, 'topology');
    const core = readText(join(topology, 'core_id'));
    if (core === undefined) return undefined; // a partial picture is worse than none
    cores.add(`${readText(join(topology, 'physical_package_id')) ?? '0'}:${core}`);
  }
  return cores.size > 0 ? cores.size : undefined;
}

/** cgroup v2's cpu.max ("max 100000" or "200000 100000"), as whole CPUs rounded up. */
function cgroupQuota(root: string): number | undefined {
  const text = readText(join(root, 'sys', 'fs', 'cgroup', 'cpu.max'));
  const [quota, period] = (text ?? '').split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? Math.ceil(q / p) : undefined;
}

/** "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isSafeInteger(a) || (b !== undefined && !Number.isSafeInteger(b))) continue;
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

function listCpus(cpuDir: string): number[] {
  try {
    return readdirSync(cpuDir)
      .map((f) => /^cpu(\d+)$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number);
  } catch {
    return [];
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

let cached: number | undefined;

/** This machine's automatic count (read once). */
export function defaultThreads(): number {
  cached ??= threadsFor(machineCpuFacts());
  return cached;
}

function machineCpuFacts(): CpuFacts {
  const logical = availableParallelism();
  if (process.platform === 'linux') return linuxCpuFacts('/', logical);
  if (process.platform === 'darwin') return { logical, physical: commandNumber('/usr/sbin/sysctl', ['-n', 'hw.physicalcpu']) };
  if (process.platform === 'win32') {
    const cores = commandNumber('powershell.exe', [
      '-NoProfile',
      '-Command',
      '(Get-CimInstance Win32_Processor | Measure-Object NumberOfCores -Sum).Sum',
    ]);
    return { logical, physical: cores };
  }
  return { logical };
}

/** A command's output as a positive whole number, or undefined (missing, slow, not a number). */
function commandNumber(command: string, args: string[]): number | undefined {
  try {
    const n = Number(execFileSync(command, args, { encoding: 'utf8', timeout: 5000, windowsHide: true }).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** A thread setting (0 or absent: automatic) as the count to use. */
export function resolveThreads(setting: number | undefined): number {
  return setting !== undefined && setting > 0 ? Math.floor(setting) : defaultThreads();
}
