/**
 * The demo model in models/demo: a tiny LLaVA with CLIP's full 24 x 24 patch grid and small
 * widths, built from a random checkpoint written in the hub's exact layout (with LLaMA's
 * tokenizer), through the same code path as a real checkpoint. Deterministic; run by
 * `npm run build`. Its answers are meaningless.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildFromCheckpoint } from '../src/builder/buildModel';
import { writeLlamaTokenizer } from '../src/builder/llamaTokenizer';
import { writeRandomCheckpoint } from '../src/builder/randomCheckpoint';
import { shapeConfig } from '../src/builder/shapes';

export const DEMO_SEED = 2403;

async function main(): Promise<void> {
  const out = resolve(__dirname, '..', 'models', 'demo');
  const checkpoint = mkdtempSync(join(tmpdir(), 'prumerge-demo-checkpoint-'));
  try {
    await writeRandomCheckpoint(checkpoint, shapeConfig('demo'), { seed: DEMO_SEED, std: 0.1 });
    await writeLlamaTokenizer(checkpoint);
    writeFileSync(
      join(checkpoint, 'preprocessor_config.json'),
      JSON.stringify({
        crop_size: { height: 336, width: 336 },
        do_center_crop: true,
        do_normalize: true,
        do_resize: true,
        image_mean: [0.48145466, 0.4578275, 0.40821073],
        image_std: [0.26862954, 0.26130258, 0.27577711],
        image_processor_type: 'CLIPImageProcessor',
        resample: 3,
        rescale_factor: 0.00392156862745098,
        size: { shortest_edge: 336 },
      }),
    );
    const m = await buildFromCheckpoint(checkpoint, { out, dtype: 'fp32', name: 'PruMerge Vision demo (random weights)', randomWeights: true });
    const bytes = Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
    console.log(`demo model: ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
  } finally {
    rmSync(checkpoint, { recursive: true, force: true });
  }
}

void main().catch((e: unknown) => {
  console.error(`make-demo-model: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
