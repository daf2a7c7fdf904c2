/**
 * The Vulkan drivers (ICDs) this Linux system offers, as the Vulkan loader finds them, and which
 * of them are a CPU in disguise. WebGPU on Linux runs over Vulkan, and with only Mesa's software
 * driver (lavapipe, whose adapter calls itself "llvmpipe") or SwiftShader installed, Dawn happily
 * picks it: slower to the first token than the CPU provider (docs/benchmarks.md, "GPU"). onnxruntime-node does not say which adapter it got, so `auto` hides the software drivers
 * from the loader (VK_LOADER_DRIVERS_DISABLE, loader 1.3.234 and later): a real GPU is still
 * found, and a machine with none falls back to the CPU.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

export interface VulkanDriver {
  /** The manifest file, e.g. /usr/share/vulkan/icd.d/lvp_icd.json. */
  readonly manifest: string;
  /** The driver library it names, e.g. libvulkan_lvp.so. */
  readonly library: string;
  /** What it is when it renders on the CPU: 'lavapipe', 'SwiftShader'; undefined for a GPU driver. */
  readonly software: string | undefined;
}

const SOFTWARE: readonly [RegExp, string][] = [
  [/lvp|lavapipe|llvmpipe/i, 'lavapipe'],
  [/swiftshader/i, 'SwiftShader'],
];

/** The loader's search path for driver manifests (its documented order), with the variables that replace or extend it. */
export function driverManifestDirs(env: NodeJS.ProcessEnv = process.env): { dirs: string[]; files: string[] } {
  const list = (v: string | undefined): string[] => (v ? v.split(':').filter(Boolean) : []);
  const only = list(env['VK_DRIVER_FILES'] ?? env['VK_ICD_FILENAMES']);
  const added = list(env['VK_ADD_DRIVER_FILES']);
  if (only.length > 0) return { dirs: [], files: [...only, ...added] };
  const config = [env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), ...list(env['XDG_CONFIG_DIRS'] ?? '/etc/xdg'), '/etc'];
  const data = [
    env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'),
    ...list(env['XDG_DATA_DIRS'] ?? '/usr/local/share:/usr/share'),
    '/usr/local/share',
    '/usr/share',
  ];
  const dirs = [...new Set([...config, ...data].map((d) => join(d, 'vulkan', 'icd.d')))];
  return { dirs, files: added };
}

/** Every driver manifest the loader would read, with what it names. */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): VulkanDriver[] {
  const { dirs, files } = driverManifestDirs(env);
  const manifests = [...dirs.flatMap((d) => listJson(d)), ...files];
  const drivers: VulkanDriver[] = [];
  for (const manifest of [...new Set(manifests)]) {
    const library = libraryOf(manifest);
    if (library === undefined) continue;
    const named = `${basename(manifest)} ${library}`;
    drivers.push({ manifest, library, software: SOFTWARE.find(([re]) => re.test(named))?.[1] });
  }
  return drivers;
}

/**
 * The VK_LOADER_DRIVERS_DISABLE value that hides `drivers` from the loader (their manifest file
 * names as globs), added to whatever the environment disables already.
 */
export function disableValue(drivers: readonly VulkanDriver[], current: string | undefined): string {
  const globs = drivers.map((d) => `*${basename(d.manifest)}`);
  return [...new Set([...(current ? current.split(',').filter(Boolean) : []), ...globs])].join(',');
}

function listJson(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function libraryOf(manifest: string): string | undefined {
  try {
    const json = JSON.parse(readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: unknown } };
    return typeof json.ICD?.library_path === 'string' ? json.ICD.library_path : undefined;
  } catch {
    return undefined; // unreadable or not a driver manifest: the loader skips it too
  }
}
