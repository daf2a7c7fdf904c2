/**
 * onnxruntime sessions on the best execution provider that works. onnxruntime-node does not fall
 * back by itself (['webgpu', 'cpu'] fails outright without a GPU: docs/onnxruntime-node.md),
 * so `auto` tries each GPU provider of the platform alone, then the CPU, and says which one ran
 * and why the others did not. `auto` never takes a software Vulkan driver for a GPU
 * (vulkanDrivers.ts); naming `webgpu` still uses one.
 */
import { existsSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { messageOf, UserError } from '../../common/errors';
import type { ExecutionProvider, ExecutionProviderSetting } from '../../shared/results';
import { disableValue, VulkanDriver, vulkanDrivers } from './vulkanDrivers';

export type { ExecutionProvider, ExecutionProviderSetting };

export const EXECUTION_PROVIDERS: readonly ExecutionProviderSetting[] = ['auto', 'webgpu', 'cuda', 'dml', 'coreml', 'cpu'];

export class SessionError extends UserError {
  override readonly name = 'SessionError';
}

/** The GPU providers worth trying on this platform, best first. */
export function gpuProviders(platform: NodeJS.Platform = process.platform): ExecutionProvider[] {
  if (platform === 'win32') return ['dml', 'webgpu', 'cuda'];
  if (platform === 'darwin') return ['coreml', 'webgpu'];
  // WebGPU on Linux runs over Vulkan; without its loader Dawn only prints a warning and fails
  return hasVulkanLoader() ? ['cuda', 'webgpu'] : ['cuda'];
}

function hasVulkanLoader(): boolean {
  const dirs = [
    ...(process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** Providers this onnxruntime-node build can load at all (bundled or installed). */
function available(): Set<string> {
  try {
    return new Set(
      ort
        .listSupportedBackends()
        .filter((b) => b.bundled !== false || b.name === 'cpu')
        .map((b) => b.name),
    );
  } catch {
    return new Set(['cpu']);
  }
}

export interface OpenedSession {
  readonly session: ort.InferenceSession;
  readonly ep: ExecutionProvider;
  /** Why each provider tried (or skipped) before `ep` was not used, for the log and the status bar. */
  readonly fallbacks: readonly string[];
}

/** Whether Linux reports a GPU device node at all: a DRM render node, or NVIDIA's own devices. */
function hasGpuDevice(): boolean {
  const some = (dir: string, re: RegExp): boolean => {
    try {
      return readdirSync(dir).some((f) => re.test(f));
    } catch {
      return false;
    }
  };
  return some('/dev/dri', /^renderD\d+$/) || some('/dev', /^nvidia\d+$/);
}

/**
 * How `auto` treats WebGPU on Linux: hidden software drivers (undefined: nothing to hide), or
 * a reason to skip it without asking Dawn (no GPU device, only software drivers).
 */
export function webgpuForAuto(drivers: readonly VulkanDriver[], gpuDevice: boolean): { skip?: string; hide: VulkanDriver[] } {
  if (drivers.length === 0) return { skip: 'skipped, no Vulkan driver is installed', hide: [] };
  const software = drivers.filter((d) => d.software !== undefined);
  const names = [...new Set(software.map((d) => d.software))].join(', ');
  const why = `${names} is a software Vulkan driver, a CPU in disguise and slower than the CPU provider (--ep webgpu uses it anyway)`;
  if (software.length > 0 && (!gpuDevice || software.length === drivers.length)) return { skip: `skipped, ${why}`, hide: [] };
  return { hide: software };
}

/** Opens `path` on WebGPU with the software Vulkan drivers hidden from the loader for the call. */
async function createHiding(hide: readonly VulkanDriver[], create: () => Promise<ort.InferenceSession>): Promise<ort.InferenceSession> {
  if (hide.length === 0) return create();
  const before = process.env['VK_LOADER_DRIVERS_DISABLE'];
  process.env['VK_LOADER_DRIVERS_DISABLE'] = disableValue(hide, before);
  try {
    return await create();
  } finally {
    if (before === undefined) delete process.env['VK_LOADER_DRIVERS_DISABLE'];
    else process.env['VK_LOADER_DRIVERS_DISABLE'] = before;
  }
}

/** Opens `path` on `setting`: a named provider must work; `auto` falls back to the CPU. */
export async function openSession(
  path: string,
  setting: ExecutionProviderSetting,
  threads?: number,
  /** Options for one provider only (the decoder's output locations on WebGPU). */
  perProvider: Partial<Record<ExecutionProvider, ort.InferenceSession.SessionOptions>> = {},
): Promise<OpenedSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
  const candidates: ExecutionProvider[] = setting === 'auto' ? [...gpuProviders().filter((p) => available().has(p)), 'cpu'] : [setting];
  const fallbacks: string[] = [];
  for (const ep of candidates) {
    const linuxWebgpu = setting === 'auto' && ep === 'webgpu' && process.platform === 'linux';
    const plan = linuxWebgpu ? webgpuForAuto(vulkanDrivers(), hasGpuDevice()) : { hide: [] };
    if (plan.skip) {
      fallbacks.push(`${ep}: ${plan.skip}`);
      continue;
    }
    try {
      const session = await createHiding(plan.hide, () =>
        ort.InferenceSession.create(path, { ...base, ...perProvider[ep], executionProviders: [ep] }),
      );
      removeTelemetryLog();
      return { session, ep, fallbacks };
    } catch (e) {
      const why = firstLine(e);
      if (setting !== 'auto') {
        throw new SessionError(`the ${ep} execution provider could not load ${path}: ${why}. Use "auto" or "cpu" instead`);
      }
      const hidden = [...new Set(plan.hide.map((d) => d.software))].join(', ');
      fallbacks.push(`${ep}: ${why}${hidden ? ` (${hidden} was left out: a software Vulkan driver, slower than the CPU)` : ''}`);
    }
  }
  throw new SessionError(`no execution provider could load ${path}: ${fallbacks.join('; ')}`);
}

let telemetryLogChecked = false;

/**
 * onnxruntime's bundled telemetry SDK (its strings say MATSDK) opens an empty mat-debug-<pid>.log
 * in the temporary folder when the first session is created, and never writes to it: one more file
 * per process, forever. Removed once it exists, if still empty (an open file unlinks fine).
 */
function removeTelemetryLog(): void {
  if (telemetryLogChecked) return;
  telemetryLogChecked = true;
  const file = join(tmpdir(), `mat-debug-${process.pid}.log`);
  try {
    if (statSync(file).size === 0) unlinkSync(file);
  } catch {
    // not there: nothing to tidy
  }
}

/** session.run with the inputs checked against the graph first: a wrong feed names itself. */
export async function runChecked(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  what: string,
  /** Outputs to write into pre-allocated tensors (null: let onnxruntime allocate). */
  fetches?: Record<string, ort.Tensor | null>,
): Promise<ort.InferenceSession.ReturnType> {
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length > 0) throw new SessionError(`${what}: missing inputs ${missing.join(', ')}`);
  try {
    return await (fetches ? session.run(feeds, fetches) : session.run(feeds));
  } catch (e) {
    const shapes = Object.entries(feeds)
      .map(([k, t]) => `${k} ${t.type}[${t.dims.join(',')}]`)
      .join(', ');
    throw new SessionError(`${what} failed: ${firstLine(e)} (inputs: ${shapes})`);
  }
}

function firstLine(e: unknown): string {
  return messageOf(e).split('\n')[0]!.trim();
}
