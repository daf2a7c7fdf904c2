/** What the host knows of a model folder without loading it: its model.json, read as plain JSON (no vscode, no onnxruntime). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the chat shows before the worker loads the model, from its model.json; undefined where that cannot be read. */
export interface ModelFacts {
  readonly randomWeights: boolean;
  /** Patches per vision-tower image (576 for LLaVA-1.5). */
  readonly patches: number;
  /** The side of the square the vision tower reads, in pixels (336 for LLaVA-1.5); 0 where model.json lacks it. */
  readonly imageSize: number;
  /** The anyres layouts (LLaVA-NeXT, LLaVA-OneVision): the count depends on the image's size. */
  readonly anyres: boolean;
  /** LLaVA-OneVision can also read an image as one crop (low detail). */
  readonly lowDetail: boolean;
}

export function readModelFacts(modelDir: string): ModelFacts | undefined {
  try {
    const m = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as {
      randomWeights?: unknown;
      vision?: { grid?: unknown; imageSize?: unknown };
      next?: { maxTiles?: unknown } | null;
    };
    const grid = typeof m.vision?.grid === 'number' ? m.vision.grid : 0;
    const anyres = m.next !== undefined && m.next !== null;
    const imageSize = typeof m.vision?.imageSize === 'number' ? m.vision.imageSize : 0;
    const lowDetail = anyres && typeof m.next?.maxTiles === 'number';
    return { randomWeights: m.randomWeights === true, patches: grid * grid, imageSize, anyres, lowDetail };
  } catch {
    return undefined;
  }
}
