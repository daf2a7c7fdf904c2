/**
 * Writes a random LLaVA checkpoint folder in the exact layout of the hub's
 * (config.json, model.safetensors or shards + model.safetensors.index.json), or in the newer
 * transformers naming: the real loading code is tested on these, since no real weights can be
 * downloaded where the tests run.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { llavaConfigFromJson } from '../families/llavaConfig';
import { StoredDtype } from '../checkpoint/safetensors';
import { NamedTensor, writeSafetensors } from '../checkpoint/safetensorsWriter';
import { newLayoutName, syntheticTensor } from '../checkpoint/weights';
import { llavaTensors } from '../families/llavaTensors';

export interface RandomCheckpointOptions {
  readonly seed: number;
  /** Std of linear weights and biases (default 0.02). */
  readonly std?: number;
  readonly layout?: 'hub' | 'transformers';
  readonly dtype?: StoredDtype;
  /** Split into this many shards with an index (default 1: a single model.safetensors). */
  readonly shards?: number;
  /** Replaces a tensor's random values (by hub name), for a checkpoint that must behave a certain way. */
  readonly override?: (name: string, random: (name: string) => Float32Array) => Float32Array | undefined;
}

export async function writeRandomCheckpoint(
  dir: string,
  configJson: Record<string, unknown>,
  options: RandomCheckpointOptions,
): Promise<void> {
  const config = llavaConfigFromJson(configJson);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`);
  const rename = options.layout === 'transformers' ? newLayoutName : (n: string): string => n;
  const specs = new Map(llavaTensors(config).map((spec) => [spec.name, spec]));
  const random = (name: string): Float32Array => syntheticTensor(specs.get(name)!, options.seed, options.std);
  const tensors: NamedTensor[] = [...specs.values()].map((spec) => ({
    name: rename(spec.name),
    shape: spec.shape,
    data: options.override?.(spec.name, random) ?? random(spec.name),
  }));
  const shards = Math.max(1, Math.min(options.shards ?? 1, tensors.length));
  if (shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), tensors, options.dtype);
    return;
  }
  const per = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) weightMap[t.name] = file;
    await writeSafetensors(join(dir, file), part, options.dtype);
  }
  const totalSize = tensors.reduce((n, t) => n + t.data.length * (options.dtype === 'F32' || !options.dtype ? 4 : 2), 0);
  await writeFile(
    join(dir, 'model.safetensors.index.json'),
    `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`,
  );
}
