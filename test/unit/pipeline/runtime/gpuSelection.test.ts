/**
 * How `auto` decides about WebGPU on Linux: the Vulkan drivers found where the loader looks, which
 * of them are software renderers, and what is hidden or skipped. (The WebGPU provider itself,
 * over a real software driver, is tested in webgpu.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { webgpuForAuto } from '../../../../src/pipeline/runtime/sessions';
import { disableValue, VulkanDriver, vulkanDrivers } from '../../../../src/pipeline/runtime/vulkanDrivers';
import { scratchDir } from '../../../helpers/checkpoints';

function icdDir(files: Record<string, string>): string {
  const root = scratchDir('icd');
  mkdirSync(join(root, 'share', 'vulkan', 'icd.d'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'share', 'vulkan', 'icd.d', name), text);
  return root;
}

const manifest = (library: string): string =>
  JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.4.305' } });

/** An environment whose only search path is `root` (no user or system folders). */
const envFor = (root: string): NodeJS.ProcessEnv => ({
  XDG_DATA_DIRS: join(root, 'share'),
  XDG_DATA_HOME: join(root, 'none'),
  XDG_CONFIG_HOME: join(root, 'none'),
  XDG_CONFIG_DIRS: join(root, 'none'),
});

describe('Vulkan drivers as the loader finds them', () => {
  it("reads each manifest's library and knows Mesa's and Google's software renderers", () => {
    const root = icdDir({
      'lvp_icd.x86_64.json': manifest('libvulkan_lvp.so'),
      'intel_icd.x86_64.json': manifest('/usr/lib/x86_64-linux-gnu/libvulkan_intel.so'),
      'vk_swiftshader_icd.json': manifest('./libvk_swiftshader.so'),
      'broken.json': '{ "ICD": ',
      'notes.txt': 'not a manifest',
    });
    const found = vulkanDrivers(envFor(root)).filter((d) => d.manifest.startsWith(root));
    assert.deepEqual(
      found.map((d) => [d.library, d.software]),
      [
        ['/usr/lib/x86_64-linux-gnu/libvulkan_intel.so', undefined],
        ['libvulkan_lvp.so', 'lavapipe'],
        ['./libvk_swiftshader.so', 'SwiftShader'],
      ],
    );
  });

  it('VK_DRIVER_FILES replaces the search, VK_ADD_DRIVER_FILES extends it', () => {
    const root = icdDir({ 'radeon_icd.x86_64.json': manifest('libvulkan_radeon.so'), 'lvp_icd.x86_64.json': manifest('libvulkan_lvp.so') });
    const lvp = join(root, 'share', 'vulkan', 'icd.d', 'lvp_icd.x86_64.json');
    const radeon = join(root, 'share', 'vulkan', 'icd.d', 'radeon_icd.x86_64.json');
    assert.deepEqual(
      vulkanDrivers({ ...envFor(root), VK_DRIVER_FILES: lvp }).map((d) => d.manifest),
      [lvp],
    );
    const empty = scratchDir('icd-empty');
    assert.deepEqual(
      vulkanDrivers({ ...envFor(empty), VK_ADD_DRIVER_FILES: radeon })
        .map((d) => d.manifest)
        .filter((m) => m.startsWith(root) || m.startsWith(empty)), // the system's own folders are searched too
      [radeon],
    );
  });

  it('hides drivers by manifest name, keeping what the environment already hides', () => {
    const lvp: VulkanDriver = {
      manifest: '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json',
      library: 'libvulkan_lvp.so',
      software: 'lavapipe',
    };
    assert.equal(disableValue([lvp], undefined), '*lvp_icd.x86_64.json');
    assert.equal(disableValue([lvp], '*nvidia*,*lvp_icd.x86_64.json'), '*nvidia*,*lvp_icd.x86_64.json');
  });
});

describe('what auto does with WebGPU on Linux', () => {
  const lvp: VulkanDriver = { manifest: '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json', library: 'libvulkan_lvp.so', software: 'lavapipe' };
  const intel: VulkanDriver = {
    manifest: '/usr/share/vulkan/icd.d/intel_icd.x86_64.json',
    library: 'libvulkan_intel.so',
    software: undefined,
  };

  it('skips it, without asking the driver, when there is no GPU device or only software drivers', () => {
    assert.match(webgpuForAuto([lvp, intel], false).skip ?? '', /lavapipe is a software Vulkan driver/);
    assert.match(webgpuForAuto([lvp], true).skip ?? '', /lavapipe is a software Vulkan driver/);
    assert.match(webgpuForAuto([], true).skip ?? '', /no Vulkan driver is installed/);
  });

  it('with a GPU device, tries it with the software drivers hidden', () => {
    assert.deepEqual(webgpuForAuto([lvp, intel], true), { hide: [lvp] });
    assert.deepEqual(webgpuForAuto([intel], true), { hide: [] });
    assert.deepEqual(webgpuForAuto([intel], false), { hide: [] });
  });
});
