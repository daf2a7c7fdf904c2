/**
 * The demo model: a tiny LLaVA with CLIP's full 24 x 24 patch grid and small widths, built from a
 * random checkpoint written in the hub's exact layout (with LLaMA's tokenizer), through the same
 * code path as a real checkpoint. Deterministic. Its answers are meaningless.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelManifest } from '../format/modelManifest';
import { buildFromCheckpoint } from './buildModel';
import { writeLlamaTokenizer } from '../families/text/llama/llamaTokenizer';
import { writeRandomCheckpoint } from './randomCheckpoint';
import { shapeConfig } from './shapes';

export const DEMO_SHAPE = 'demo';
export const DEMO_SEED = 2403;
/** Larger than transformers' 0.02, so that the random vision tower's attention is not flat. */
export const DEMO_STD = 0.1;

export async function makeDemoModel(out: string): Promise<ModelManifest> {
  const checkpoint = mkdtempSync(join(tmpdir(), 'prumerge-demo-checkpoint-'));
  try {
    await writeRandomCheckpoint(checkpoint, shapeConfig(DEMO_SHAPE), { seed: DEMO_SEED, std: DEMO_STD });
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
    return await buildFromCheckpoint(checkpoint, {
      out,
      dtype: 'fp32',
      name: 'PruMerge Vision demo (random weights)',
      randomWeights: true,
    });
  } finally {
    rmSync(checkpoint, { recursive: true, force: true });
  }
}
