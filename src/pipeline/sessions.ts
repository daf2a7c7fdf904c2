/**
 * onnxruntime sessions on the best execution provider that works. onnxruntime-node does not fall
 * back by itself (['webgpu', 'cpu'] fails outright without a GPU: docs/onnxruntime-node.md),
 * so `auto` tries each GPU provider of the platform alone, then the CPU, and says which one ran.
 */
import { messageOf, UserError } from '../common/errors';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'webgpu' | 'cuda' | 'dml' | 'coreml' | 'cpu';
export type ExecutionProviderSetting = 'auto' | ExecutionProvider;

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
  /** Why each provider tried before `ep` failed, for the log. */
  readonly fallbacks: readonly string[];
}

/** Opens `path` on `setting`: a named provider must work; `auto` falls back to the CPU. */
export async function openSession(path: string, setting: ExecutionProviderSetting, threads?: number): Promise<OpenedSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
  const candidates: ExecutionProvider[] = setting === 'auto' ? [...gpuProviders().filter((p) => available().has(p)), 'cpu'] : [setting];
  const fallbacks: string[] = [];
  for (const ep of candidates) {
    try {
      const session = await ort.InferenceSession.create(path, { ...base, executionProviders: [ep] });
      return { session, ep, fallbacks };
    } catch (e) {
      const why = firstLine(e);
      if (setting !== 'auto') {
        throw new SessionError(`the ${ep} execution provider could not load ${path}: ${why}. Use "auto" or "cpu" instead`);
      }
      fallbacks.push(`${ep}: ${why}`);
    }
  }
  throw new SessionError(`no execution provider could load ${path}: ${fallbacks.join('; ')}`);
}

/** session.run with the inputs checked against the graph first: a wrong feed names itself. */
export async function runChecked(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  what: string,
): Promise<ort.InferenceSession.ReturnType> {
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length > 0) throw new SessionError(`${what}: missing inputs ${missing.join(', ')}`);
  try {
    return await session.run(feeds);
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
